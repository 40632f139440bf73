//! The simulated org's objects and fields: what describe returns, and the shape records take.
//!
//! Long because it is mostly data: the describe of every object the simulated org has.

use serde_json::{Value as Json, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Id,
    String,
    Textarea,
    Reference,
    Boolean,
    Int,
    Double,
    Currency,
    Percent,
    Date,
    Datetime,
    Email,
    Phone,
    Url,
    Picklist,
    Address,
    /// A file's body: a URL to it in query results, its bytes only one file per call.
    Base64,
}

impl FieldType {
    /// The type of a field an admin may add.
    pub fn from_name(name: &str) -> Option<FieldType> {
        Some(match name {
            "string" => FieldType::String,
            "textarea" => FieldType::Textarea,
            "boolean" => FieldType::Boolean,
            "int" => FieldType::Int,
            "double" => FieldType::Double,
            "currency" => FieldType::Currency,
            "percent" => FieldType::Percent,
            "date" => FieldType::Date,
            "datetime" => FieldType::Datetime,
            "email" => FieldType::Email,
            "phone" => FieldType::Phone,
            "url" => FieldType::Url,
            "picklist" => FieldType::Picklist,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::String => "string",
            FieldType::Textarea => "textarea",
            FieldType::Reference => "reference",
            FieldType::Boolean => "boolean",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Picklist => "picklist",
            FieldType::Address => "address",
            FieldType::Base64 => "base64",
        }
    }

    fn soap_type(self) -> &'static str {
        match self {
            FieldType::Id | FieldType::Reference => "tns:ID",
            FieldType::Boolean => "xsd:boolean",
            FieldType::Int => "xsd:int",
            FieldType::Double | FieldType::Currency | FieldType::Percent => "xsd:double",
            FieldType::Date => "xsd:date",
            FieldType::Datetime => "xsd:dateTime",
            FieldType::Address => "urn:address",
            FieldType::Base64 => "xsd:base64Binary",
            _ => "xsd:string",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: String,
    pub label: String,
    pub field_type: FieldType,
    pub length: u32,
    pub nillable: bool,
    pub createable: bool,
    pub updateable: bool,
    pub reference_to: Vec<String>,
    pub relationship_name: Option<String>,
    pub cascade_delete: bool,
    pub external_id: bool,
    pub unique: bool,
    pub compound_field_name: Option<String>,
    pub picklist: Vec<String>,
    pub custom: bool,
}

impl FieldDef {
    fn new(name: &str, field_type: FieldType) -> Self {
        let length = match field_type {
            FieldType::Id | FieldType::Reference => 18,
            FieldType::String | FieldType::Phone | FieldType::Picklist => 255,
            FieldType::Email => 80,
            FieldType::Url => 255,
            FieldType::Textarea => 32000,
            _ => 0,
        };
        FieldDef {
            name: name.to_string(),
            label: label_of(name),
            field_type,
            length,
            nillable: true,
            createable: true,
            updateable: true,
            reference_to: Vec::new(),
            relationship_name: None,
            cascade_delete: false,
            external_id: false,
            unique: false,
            compound_field_name: None,
            picklist: Vec::new(),
            custom: name.ends_with("__c"),
        }
    }

    /// A custom field an admin adds (`Region__c`).
    pub fn custom(name: &str, field_type: FieldType) -> Self {
        FieldDef::new(name, field_type)
    }

    /// System fields: set by the platform, never by a client.
    fn system(name: &str, field_type: FieldType) -> Self {
        FieldDef {
            nillable: false,
            createable: false,
            updateable: false,
            ..FieldDef::new(name, field_type)
        }
    }

    fn required(mut self) -> Self {
        self.nillable = false;
        self
    }

    fn lookup(name: &str, to: &[&str]) -> Self {
        FieldDef {
            reference_to: to.iter().map(|s| s.to_string()).collect(),
            relationship_name: Some(relationship_name(name)),
            ..FieldDef::new(name, FieldType::Reference)
        }
    }

    fn picklist(name: &str, values: &[&str]) -> Self {
        FieldDef {
            picklist: values.iter().map(|s| s.to_string()).collect(),
            ..FieldDef::new(name, FieldType::Picklist)
        }
    }

    pub fn is_compound(&self) -> bool {
        self.field_type == FieldType::Address
    }

    pub fn describe(&self) -> Json {
        let polymorphic = self.reference_to.len() > 1;
        json!({
            "name": self.name,
            "label": self.label,
            "type": self.field_type.name(),
            "soapType": self.field_type.soap_type(),
            "length": self.length,
            "byteLength": self.length * 3,
            "precision": if matches!(self.field_type, FieldType::Currency | FieldType::Double | FieldType::Percent) { 18 } else { 0 },
            "scale": if matches!(self.field_type, FieldType::Currency | FieldType::Percent) { 2 } else { 0 },
            "digits": if self.field_type == FieldType::Int { 9 } else { 0 },
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "defaultedOnCreate": !self.createable || self.field_type == FieldType::Boolean,
            "calculated": false,
            "autoNumber": false,
            "externalId": self.external_id,
            "idLookup": self.field_type == FieldType::Id || self.external_id,
            "unique": self.unique,
            "caseSensitive": false,
            "custom": self.custom,
            "deprecatedAndHidden": false,
            "filterable": !self.is_compound(),
            "sortable": !self.is_compound() && self.field_type != FieldType::Textarea,
            "groupable": !self.is_compound(),
            "permissionable": self.nillable && self.createable,
            "referenceTo": self.reference_to,
            "relationshipName": self.relationship_name,
            "relationshipOrder": if self.cascade_delete { Some(0) } else { None },
            "polymorphicForeignKey": polymorphic,
            "cascadeDelete": self.cascade_delete,
            "restrictedDelete": false,
            "compoundFieldName": self.compound_field_name,
            "extraTypeInfo": null,
            "htmlFormatted": false,
            "picklistValues": self.picklist.iter().enumerate().map(|(i, v)| json!({
                "value": v, "label": v, "active": true, "defaultValue": i == 0, "validFor": null
            })).collect::<Vec<_>>(),
            "dependentPicklist": false,
            "controllerName": null,
            "writeRequiresMasterRead": false,
            "defaultValue": null,
        })
    }
}

fn label_of(name: &str) -> String {
    let base = name.trim_end_matches("__c").replace('_', " ");
    let mut label = String::new();
    for (i, c) in base.chars().enumerate() {
        if i > 0 && c.is_uppercase() && !label.ends_with(' ') {
            label.push(' ');
        }
        label.push(c);
    }
    label
}

/// `AccountId` -> `Account`, `Account__c` -> `Account__r`, `WhoId` -> `Who`.
fn relationship_name(field: &str) -> String {
    if let Some(custom) = field.strip_suffix("__c") {
        format!("{custom}__r")
    } else {
        field.strip_suffix("Id").unwrap_or(field).to_string()
    }
}

#[derive(Debug, Clone)]
pub struct ObjectDef {
    pub name: String,
    pub label: String,
    pub label_plural: String,
    pub key_prefix: String,
    pub custom: bool,
    pub fields: Vec<FieldDef>,
    /// Objects that can be written through the API (not Organization).
    pub createable: bool,
    /// Whether SOQL may name it in FROM (describe says so; some objects are reached only
    /// through a relationship).
    pub queryable: bool,
    /// Whether SOSL finds its records.
    pub searchable: bool,
    /// Where its records live under `/services/data/vXX.X/`: `sobjects`, or
    /// `tooling/sobjects` for the Tooling API's objects.
    pub resource: &'static str,
}

impl ObjectDef {
    fn new(
        name: &str,
        plural: &str,
        key_prefix: &str,
        createable: bool,
        mut fields: Vec<FieldDef>,
    ) -> Self {
        let mut all = vec![
            FieldDef::system("Id", FieldType::Id),
            FieldDef::system("IsDeleted", FieldType::Boolean),
        ];
        all.append(&mut fields);
        for (name, field_type) in [
            ("CreatedDate", FieldType::Datetime),
            ("CreatedById", FieldType::Reference),
            ("LastModifiedDate", FieldType::Datetime),
            ("LastModifiedById", FieldType::Reference),
            ("SystemModstamp", FieldType::Datetime),
        ] {
            let mut field = FieldDef::system(name, field_type);
            if field_type == FieldType::Reference {
                field.reference_to = vec!["User".to_string()];
                field.relationship_name = Some(relationship_name(name));
            }
            all.push(field);
        }
        ObjectDef {
            name: name.to_string(),
            label: label_of(name),
            label_plural: plural.to_string(),
            key_prefix: key_prefix.to_string(),
            custom: name.ends_with("__c"),
            fields: all,
            createable,
            queryable: true,
            searchable: createable,
            resource: "sobjects",
        }
    }

    /// An object that keeps only SystemModstamp of the platform's timestamps
    /// (ContentDocumentLink: no created or last-modified fields).
    fn without_audit_fields(mut self) -> Self {
        self.fields.retain(|f| {
            !matches!(
                f.name.as_str(),
                "CreatedDate" | "CreatedById" | "LastModifiedDate" | "LastModifiedById"
            )
        });
        self
    }

    pub fn field(&self, name: &str) -> Option<(usize, &FieldDef)> {
        self.fields
            .iter()
            .enumerate()
            .find(|(_, f)| f.name.eq_ignore_ascii_case(name))
    }

    /// The field whose relationship is called `name` (`Owner` -> `OwnerId`).
    pub fn relationship(&self, name: &str) -> Option<(usize, &FieldDef)> {
        self.fields.iter().enumerate().find(|(_, f)| {
            f.relationship_name
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(name))
        })
    }

    pub fn urls(&self, version: &str) -> Json {
        let base = format!("/services/data/v{version}/{}/{}", self.resource, self.name);
        json!({
            "sobject": base,
            "describe": format!("{base}/describe"),
            "rowTemplate": format!("{base}/{{ID}}"),
        })
    }

    pub fn global_describe(&self, version: &str) -> Json {
        json!({
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": self.custom,
            "customSetting": false,
            "queryable": self.queryable,
            "retrieveable": self.queryable,
            "replicateable": self.createable,
            "searchable": self.searchable,
            "createable": self.createable,
            "updateable": self.createable,
            "deletable": self.createable,
            "undeletable": self.createable,
            "mergeable": matches!(self.name.as_str(), "Account" | "Contact" | "Lead" | "Case"),
            "layoutable": true,
            "triggerable": self.createable,
            "feedEnabled": !self.custom && self.createable,
            "mruEnabled": self.createable,
            "activateable": false,
            "deprecatedAndHidden": false,
            "hasSubtypes": false,
            "isSubtype": false,
            "isInterface": false,
            "associateEntityType": null,
            "associateParentEntity": null,
            "urls": self.urls(version),
        })
    }

    pub fn describe(&self, version: &str, catalog: &Catalog) -> Json {
        let mut describe = self.global_describe(version);
        let fields: Vec<Json> = self.fields.iter().map(FieldDef::describe).collect();
        let children: Vec<Json> = catalog
            .objects
            .iter()
            .flat_map(|child| {
                child
                    .fields
                    .iter()
                    .filter(|f| {
                        f.reference_to.contains(&self.name)
                            && f.name != "CreatedById"
                            && f.name != "LastModifiedById"
                    })
                    .map(move |f| {
                        json!({
                            "childSObject": child.name,
                            "field": f.name,
                            "relationshipName": child_relationship_name(&child.name),
                            "cascadeDelete": f.cascade_delete,
                            "restrictedDelete": false,
                            "deprecatedAndHidden": false,
                            "junctionIdListNames": [],
                            "junctionReferenceTo": [],
                        })
                    })
            })
            .collect();
        if let Some(map) = describe.as_object_mut() {
            map.insert("fields".into(), Json::Array(fields));
            map.insert("childRelationships".into(), Json::Array(children));
            map.insert("recordTypeInfos".into(), json!([]));
            map.insert(
                "supportedScopes".into(),
                json!([{"label": "All", "name": "everything"}]),
            );
        }
        describe
    }
}

pub(crate) fn child_relationship_name(child: &str) -> String {
    match child.strip_suffix("__c") {
        Some(base) => format!("{base}s__r"),
        None if child.ends_with('y') => format!("{}ies", &child[..child.len() - 1]),
        None if child.ends_with('s') => format!("{child}es"),
        None => format!("{child}s"),
    }
}

/// Every object the simulated org has.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub objects: Vec<ObjectDef>,
    /// Whether the API user holds "Query All Files": every file is listed to it, and its
    /// queries of ContentDocumentLink need no filter.
    pub query_all_files: bool,
}

impl Catalog {
    pub fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.objects
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
    }

    pub fn object_index(&self, name: &str) -> Option<usize> {
        self.objects
            .iter()
            .position(|o| o.name.eq_ignore_ascii_case(name))
    }

    /// The Tooling API's objects this org serves: Apex classes and triggers, with their source.
    pub fn tooling() -> Catalog {
        use FieldType::*;
        let status = || FieldDef::picklist("Status", &["Active", "Inactive", "Deleted"]);
        let source = || {
            vec![
                FieldDef::new("Name", String).required(),
                FieldDef::new("NamespacePrefix", String),
                FieldDef::new("ApiVersion", Double),
                status(),
                FieldDef::new("IsValid", Boolean),
                FieldDef::new("BodyCrc", Double),
                FieldDef::new("Body", Textarea),
                FieldDef::new("LengthWithoutComments", Int),
            ]
        };
        let mut trigger = source();
        trigger.push(FieldDef::new("TableEnumOrId", String));
        trigger.push(FieldDef::new("UsageBeforeInsert", Boolean));
        trigger.push(FieldDef::new("UsageAfterUpdate", Boolean));
        let mut objects = vec![
            ObjectDef::new("ApexClass", "Apex Classes", "01p", false, source()),
            ObjectDef::new("ApexTrigger", "Apex Triggers", "01q", false, trigger),
        ];
        for object in &mut objects {
            object.resource = "tooling/sobjects";
        }
        Catalog {
            objects,
            query_all_files: false,
        }
    }

    /// The parent's child relationship called `name` (`Contacts` of Account): the child object,
    /// its lookup field that points at the parent, and the relationship's name as described.
    pub fn child_relationship(&self, parent: usize, name: &str) -> Option<(usize, usize, String)> {
        let parent_name = &self.objects[parent].name;
        self.objects.iter().enumerate().find_map(|(index, child)| {
            let relationship = child_relationship_name(&child.name);
            if !relationship.eq_ignore_ascii_case(name) {
                return None;
            }
            let field = child.fields.iter().position(|f| {
                f.reference_to.contains(parent_name)
                    && f.name != "CreatedById"
                    && f.name != "LastModifiedById"
            })?;
            Some((index, field, relationship))
        })
    }

    pub fn by_key_prefix(&self, id: &str) -> Option<usize> {
        let prefix = id.get(..3)?;
        self.objects.iter().position(|o| o.key_prefix == prefix)
    }

    pub fn standard() -> Catalog {
        use FieldType::*;
        let owner = || FieldDef::lookup("OwnerId", &["User"]);
        let address = |prefix: &str| {
            let compound = format!("{prefix}Address");
            let mut fields = vec![FieldDef {
                createable: false,
                updateable: false,
                ..FieldDef::new(&compound, Address)
            }];
            for (part, field_type) in [
                ("Street", Textarea),
                ("City", String),
                ("State", String),
                ("PostalCode", String),
                ("Country", String),
                ("Latitude", Double),
                ("Longitude", Double),
            ] {
                let mut field = FieldDef::new(&format!("{prefix}{part}"), field_type);
                field.compound_field_name = Some(compound.clone());
                if field_type == Textarea {
                    field.length = 255;
                }
                fields.push(field);
            }
            fields
        };
        let mut account = vec![
            FieldDef::new("Name", String).required(),
            FieldDef::picklist(
                "Type",
                &[
                    "Prospect",
                    "Customer - Direct",
                    "Customer - Channel",
                    "Partner",
                ],
            ),
            FieldDef::lookup("ParentId", &["Account"]),
            FieldDef::new("AccountNumber", String),
            FieldDef::picklist(
                "Industry",
                &[
                    "Agriculture",
                    "Banking",
                    "Energy",
                    "Healthcare",
                    "Retail",
                    "Technology",
                ],
            ),
            FieldDef::new("AnnualRevenue", Currency),
            FieldDef::new("NumberOfEmployees", Int),
            FieldDef::new("Phone", Phone),
            FieldDef::new("Website", Url),
            FieldDef::new("Description", Textarea),
            owner(),
        ];
        account.extend(address("Billing"));
        let contact = vec![
            FieldDef::lookup("AccountId", &["Account"]),
            FieldDef {
                createable: false,
                updateable: false,
                ..FieldDef::new("Name", String)
            },
            FieldDef::new("FirstName", String),
            FieldDef::new("LastName", String).required(),
            FieldDef::new("Email", Email),
            FieldDef::new("Phone", Phone),
            FieldDef::new("Title", String),
            FieldDef::new("Birthdate", Date),
            FieldDef::new("HasOptedOutOfEmail", Boolean),
            owner(),
        ];
        let opportunity = vec![
            FieldDef::lookup("AccountId", &["Account"]),
            FieldDef::new("Name", String).required(),
            FieldDef::picklist(
                "StageName",
                &[
                    "Prospecting",
                    "Qualification",
                    "Proposal",
                    "Negotiation",
                    "Closed Won",
                    "Closed Lost",
                ],
            )
            .required(),
            FieldDef::new("Amount", Currency),
            FieldDef::new("Probability", Percent),
            FieldDef::new("CloseDate", Date).required(),
            FieldDef::new("IsClosed", Boolean),
            owner(),
        ];
        let case = vec![
            FieldDef::lookup("AccountId", &["Account"]),
            FieldDef::lookup("ContactId", &["Contact"]),
            FieldDef::new("Subject", String),
            FieldDef::new("Description", Textarea),
            FieldDef::picklist("Status", &["New", "Working", "Escalated", "Closed"]),
            FieldDef::picklist("Priority", &["High", "Medium", "Low"]),
            FieldDef::lookup("OwnerId", &["Group", "User"]),
        ];
        let lead = vec![
            FieldDef {
                createable: false,
                updateable: false,
                ..FieldDef::new("Name", String)
            },
            FieldDef::new("FirstName", String),
            FieldDef::new("LastName", String).required(),
            FieldDef::new("Company", String).required(),
            FieldDef::new("Email", Email),
            FieldDef::picklist(
                "Status",
                &[
                    "Open - Not Contacted",
                    "Working - Contacted",
                    "Closed - Converted",
                    "Closed - Not Converted",
                ],
            )
            .required(),
            FieldDef::lookup("OwnerId", &["Group", "User"]),
        ];
        // First and last name make the read-only Name of people.
        let full_name = || FieldDef {
            createable: false,
            updateable: false,
            ..FieldDef::new("Name", String)
        };
        let user = vec![
            full_name(),
            FieldDef::new("Username", String).required(),
            FieldDef::new("FirstName", String),
            FieldDef::new("LastName", String).required(),
            FieldDef::new("Email", Email).required(),
            FieldDef::new("IsActive", Boolean),
        ];
        let task = vec![
            FieldDef::new("Subject", String),
            FieldDef::picklist("Status", &["Not Started", "In Progress", "Completed"]).required(),
            FieldDef::new("ActivityDate", Date),
            FieldDef::lookup("WhoId", &["Contact", "Lead"]),
            FieldDef::lookup("WhatId", &["Account", "Opportunity", "Case", "Invoice__c"]),
            owner(),
        ];
        let invoice = vec![
            FieldDef::new("Name", String).required(),
            FieldDef {
                cascade_delete: true,
                nillable: false,
                ..FieldDef::lookup("Account__c", &["Account"])
            },
            FieldDef {
                external_id: true,
                unique: true,
                ..FieldDef::new("Invoice_Number__c", String)
            },
            FieldDef::new("Amount__c", Currency),
            FieldDef::new("Due_Date__c", Date),
            FieldDef::picklist("Status__c", &["Draft", "Sent", "Paid", "Void"]),
        ];
        // Files: a document, its versions (the bodies), and the records it is shared with.
        let read_only = |field: FieldDef| FieldDef {
            createable: false,
            updateable: false,
            ..field
        };
        let content_document = vec![
            FieldDef::new("Title", String).required(),
            FieldDef::new("Description", Textarea),
            read_only(FieldDef::new("FileType", String)),
            read_only(FieldDef::new("FileExtension", String)),
            read_only(FieldDef::new("ContentSize", Int)),
            read_only(FieldDef::lookup(
                "LatestPublishedVersionId",
                &["ContentVersion"],
            )),
            owner(),
        ];
        let shared_with = [
            "Account",
            "Contact",
            "Opportunity",
            "Case",
            "Lead",
            "Invoice__c",
            "User",
        ];
        let content_version = vec![
            FieldDef {
                cascade_delete: true,
                ..FieldDef::lookup("ContentDocumentId", &["ContentDocument"])
            },
            FieldDef::new("Title", String).required(),
            FieldDef::new("Description", Textarea),
            FieldDef::new("PathOnClient", String).required(),
            FieldDef::new("VersionData", Base64).required(),
            FieldDef::new("ReasonForChange", String),
            read_only(FieldDef::new("Checksum", String)),
            read_only(FieldDef::new("ContentSize", Int)),
            read_only(FieldDef::new("FileExtension", String)),
            read_only(FieldDef::new("FileType", String)),
            read_only(FieldDef::new("IsLatest", Boolean)),
            read_only(FieldDef::new("VersionNumber", String)),
            FieldDef {
                updateable: false,
                ..FieldDef::lookup("FirstPublishLocationId", &shared_with)
            },
            owner(),
        ];
        // A required lookup set once, whose parent's delete takes the record along.
        let owned_by = |name: &str, to: &[&str]| FieldDef {
            cascade_delete: true,
            updateable: false,
            ..FieldDef::lookup(name, to).required()
        };
        let content_document_link = vec![
            owned_by("ContentDocumentId", &["ContentDocument"]),
            owned_by("LinkedEntityId", &shared_with),
            FieldDef::picklist("ShareType", &["V", "C", "I"]),
            FieldDef::picklist("Visibility", &["AllUsers", "InternalUsers", "SharedUsers"]),
        ];
        // Folders of the Documents tab (and of reports, dashboards and email templates).
        let folder = vec![
            FieldDef::new("Name", String).required(),
            FieldDef::new("DeveloperName", String),
            FieldDef::picklist("Type", &["Document", "Report", "Dashboard", "Email"]),
            FieldDef::picklist(
                "AccessType",
                &["Public", "Hidden", "Shared", "PublicInternal"],
            ),
        ];
        // A Document lives in a folder, or in a user's personal folder (its Id is the user's).
        let document = vec![
            FieldDef::new("Name", String).required(),
            FieldDef::new("DeveloperName", String),
            FieldDef::lookup("FolderId", &["Folder", "User"]).required(),
            FieldDef::new("ContentType", String),
            FieldDef::new("Type", String),
            FieldDef::new("IsPublic", Boolean),
            read_only(FieldDef::new("BodyLength", Int)),
            FieldDef::new("Body", Base64).required(),
            FieldDef::new("Description", Textarea),
            FieldDef::new("Keywords", String),
            FieldDef::lookup("AuthorId", &["User"]),
        ];
        let attachment = vec![
            owned_by(
                "ParentId",
                &[
                    "Account",
                    "Contact",
                    "Opportunity",
                    "Case",
                    "Lead",
                    "Invoice__c",
                    "Task",
                ],
            ),
            FieldDef::new("Name", String).required(),
            FieldDef::new("IsPrivate", Boolean),
            FieldDef::new("ContentType", String),
            read_only(FieldDef::new("BodyLength", Int)),
            FieldDef::new("Body", Base64).required(),
            FieldDef::new("Description", Textarea),
            owner(),
        ];
        let organization = vec![
            FieldDef::new("Name", String),
            FieldDef::new("IsSandbox", Boolean),
            FieldDef::new("OrganizationType", String),
            FieldDef::new("InstanceName", String),
            FieldDef::new("TrialExpirationDate", Datetime),
            FieldDef::new("NamespacePrefix", String),
        ];
        let mut catalog = Catalog {
            objects: vec![
                ObjectDef::new("Account", "Accounts", "001", true, account),
                ObjectDef::new("Contact", "Contacts", "003", true, contact),
                ObjectDef::new("User", "Users", "005", true, user),
                ObjectDef::new("Opportunity", "Opportunities", "006", true, opportunity),
                ObjectDef::new("Lead", "Leads", "00Q", true, lead),
                ObjectDef::new("Task", "Tasks", "00T", true, task),
                ObjectDef::new("Case", "Cases", "500", true, case),
                ObjectDef::new("Invoice__c", "Invoices", "a01", true, invoice),
                ObjectDef::new(
                    "ContentDocument",
                    "Content Documents",
                    "069",
                    false,
                    content_document,
                ),
                ObjectDef::new(
                    "ContentVersion",
                    "Content Versions",
                    "068",
                    true,
                    content_version,
                ),
                ObjectDef {
                    searchable: false,
                    ..ObjectDef::new(
                        "ContentDocumentLink",
                        "Content Document Links",
                        "06A",
                        true,
                        content_document_link,
                    )
                    .without_audit_fields()
                },
                ObjectDef {
                    searchable: false,
                    ..ObjectDef::new("Attachment", "Attachments", "00P", true, attachment)
                },
                ObjectDef::new("Folder", "Folders", "00l", true, folder),
                ObjectDef::new("Document", "Documents", "015", true, document),
                ObjectDef::new("Organization", "Organizations", "00D", false, organization),
                // Approval history: read only through ProcessInstance's StepsAndWorkitems, so
                // describe marks it not queryable, and a backup must pass it by.
                ObjectDef {
                    queryable: false,
                    ..ObjectDef::new(
                        "ProcessInstanceHistory",
                        "Approval Histories",
                        "04h",
                        false,
                        vec![
                            FieldDef::lookup("ActorId", &["User"]),
                            FieldDef::new("Comments", Textarea),
                            FieldDef::picklist(
                                "StepStatus",
                                &["Approved", "Rejected", "Removed", "Pending"],
                            ),
                        ],
                    )
                },
            ],
            query_all_files: false,
        };
        // No field of an object the API cannot create is settable on create (a document
        // comes into being with its first version).
        for object in catalog.objects.iter_mut().filter(|o| !o.createable) {
            for field in &mut object.fields {
                field.createable = false;
            }
        }
        catalog
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_what_a_backup_must_handle() {
        let catalog = Catalog::standard();
        let account = catalog.object("account").expect("Account");
        let (_, billing) = account.field("BillingAddress").expect("compound");
        assert!(billing.is_compound() && !billing.createable);
        let (_, city) = account.field("BillingCity").expect("component");
        assert_eq!(city.compound_field_name.as_deref(), Some("BillingAddress"));
        let task = catalog.object("Task").expect("Task");
        assert!(task.field("WhatId").expect("WhatId").1.reference_to.len() > 1);
        let invoice = catalog.object("Invoice__c").expect("custom object");
        assert!(
            invoice
                .field("Account__c")
                .expect("master-detail")
                .1
                .cascade_delete
        );
        assert!(
            invoice
                .field("Invoice_Number__c")
                .expect("external id")
                .1
                .external_id
        );
        assert_eq!(
            account.relationship("Owner").map(|(_, f)| f.name.as_str()),
            Some("OwnerId")
        );
        assert_eq!(relationship_name("Account__c"), "Account__r");
        let describe = account.describe("62.0", &catalog);
        let children = describe["childRelationships"].as_array().expect("children");
        assert!(
            children
                .iter()
                .any(|c| c["childSObject"] == "Invoice__c" && c["cascadeDelete"] == true)
        );
    }
}
