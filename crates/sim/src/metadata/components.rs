//! The org's metadata: every component the Metadata API lists, generated from the seed and
//! agreeing with the rest of the org (its Apex is the Tooling API's, its objects the describe's).

use super::super::catalog::Catalog;
use super::super::ids;
use super::super::org::{DAY_MS, Org, Rng, Value};

/// A metadata type as `describeMetadata` describes it.
pub struct MetadataType {
    pub name: &'static str,
    pub directory: &'static str,
    pub suffix: Option<&'static str>,
    /// Listed per folder (`listMetadata` needs the folder; wildcards do not reach them).
    pub in_folder: bool,
    /// Each component also has a `-meta.xml` file.
    pub meta_file: bool,
    pub children: &'static [&'static str],
}

/// The types this org has components of, and the folder types of the foldered ones.
pub const TYPES: &[MetadataType] = &[
    MetadataType {
        name: "ApexClass",
        directory: "classes",
        suffix: Some("cls"),
        in_folder: false,
        meta_file: true,
        children: &[],
    },
    MetadataType {
        name: "ApexTrigger",
        directory: "triggers",
        suffix: Some("trigger"),
        in_folder: false,
        meta_file: true,
        children: &[],
    },
    MetadataType {
        name: "CustomObject",
        directory: "objects",
        suffix: Some("object"),
        in_folder: false,
        meta_file: false,
        children: &["CustomField", "ValidationRule", "ListView"],
    },
    MetadataType {
        name: "Layout",
        directory: "layouts",
        suffix: Some("layout"),
        in_folder: false,
        meta_file: false,
        children: &[],
    },
    MetadataType {
        name: "Flow",
        directory: "flows",
        suffix: Some("flow"),
        in_folder: false,
        meta_file: false,
        children: &[],
    },
    MetadataType {
        name: "Profile",
        directory: "profiles",
        suffix: Some("profile"),
        in_folder: false,
        meta_file: false,
        children: &[],
    },
    MetadataType {
        name: "PermissionSet",
        directory: "permissionsets",
        suffix: Some("permissionset"),
        in_folder: false,
        meta_file: false,
        children: &[],
    },
    MetadataType {
        name: "EmailTemplate",
        directory: "email",
        suffix: Some("email"),
        in_folder: true,
        meta_file: true,
        children: &[],
    },
    MetadataType {
        name: "Report",
        directory: "reports",
        suffix: Some("report"),
        in_folder: true,
        meta_file: false,
        children: &[],
    },
    MetadataType {
        name: "StaticResource",
        directory: "staticresources",
        suffix: Some("resource"),
        in_folder: false,
        meta_file: true,
        children: &[],
    },
    MetadataType {
        name: "CustomLabels",
        directory: "labels",
        suffix: Some("labels"),
        in_folder: false,
        meta_file: false,
        children: &["CustomLabel"],
    },
];

/// (foldered type, the type its folders are listed as).
pub const FOLDER_TYPES: &[(&str, &str)] =
    &[("EmailTemplate", "EmailFolder"), ("Report", "ReportFolder")];

/// One component, as `listMetadata` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Its type (`ApexClass`), or a folder type (`ReportFolder`) or child type (`CustomField`).
    pub kind: String,
    pub full_name: String,
    /// Path in a retrieve's zip (`classes/AccountService.cls`).
    pub file_name: String,
    pub id: String,
    pub created: i64,
    pub modified: i64,
    /// The component's file as a retrieve writes it (empty for a folder).
    pub source: String,
}

/// The Metadata API's XML namespace, which every component file declares.
const XMLNS: &str = "http://soap.sforce.com/2006/04/metadata";

/// A component file: `<Kind xmlns=…>` around `inner`.
pub fn xml_file(kind: &str, inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{kind} xmlns=\"{XMLNS}\">\n{inner}</{kind}>\n"
    )
}

/// The `-meta.xml` beside a component whose type has one (Apex, templates, resources).
pub fn meta_file(component: &Component) -> String {
    let inner = match component.kind.as_str() {
        "ApexClass" | "ApexTrigger" => {
            "    <apiVersion>62.0</apiVersion>\n    <status>Active</status>\n".to_string()
        }
        "EmailTemplate" => format!(
            "    <available>true</available>\n    <encodingKey>UTF-8</encodingKey>\n    <name>{}</name>\n    <style>none</style>\n    <type>text</type>\n",
            leaf(&component.full_name)
        ),
        "StaticResource" => {
            "    <cacheControl>Public</cacheControl>\n    <contentType>application/octet-stream</contentType>\n".to_string()
        }
        _ => String::new(),
    };
    xml_file(&component.kind, &inner)
}

fn leaf(full_name: &str) -> &str {
    full_name
        .rsplit_once('/')
        .map_or(full_name, |(_, leaf)| leaf)
}

/// Builds the component list: Ids in order, times spread over the org's past.
struct Maker {
    made: Vec<Component>,
    counter: u64,
    now: i64,
    rng: Rng,
}

impl Maker {
    fn add(&mut self, kind: &str, full_name: String, file_name: String, source: Option<String>) {
        self.counter += 1;
        let created = self.now - (60 + self.rng.below(700) as i64) * DAY_MS;
        let modified = (created + self.rng.below(50) as i64 * DAY_MS).min(self.now);
        let source = source.unwrap_or_else(|| generated_source(kind, &full_name));
        self.made.push(Component {
            kind: kind.to_string(),
            full_name,
            file_name,
            // Metadata Ids have prefixes of their own; one shared here keeps them unique.
            id: ids::record_id("0Md", self.counter),
            created,
            modified,
            source,
        });
    }
}

/// Every component of the org: its Apex from `tooling`, an object per describe, the rest
/// generated from the seed.
pub fn generate(org: &Org, tooling: &Org, seed: u64, extra: usize) -> Vec<Component> {
    let mut maker = Maker {
        made: Vec::new(),
        counter: 0,
        now: org.clock.now(),
        rng: Rng::new(seed ^ 0x3E7A),
    };
    for (object, directory, suffix) in [
        ("ApexClass", "classes", "cls"),
        ("ApexTrigger", "triggers", "trigger"),
    ] {
        let Some(index) = tooling.object_index(object) else {
            continue;
        };
        let def = &tooling.catalog.objects[index];
        let slot = |name: &str| def.field(name).map(|(i, _)| i);
        let (Some(name_slot), Some(body_slot)) = (slot("Name"), slot("Body")) else {
            continue;
        };
        for record in &tooling.tables[index].records {
            if let (Value::Text(name), Value::Text(body)) =
                (&record.values()[name_slot], &record.values()[body_slot])
            {
                maker.add(
                    object,
                    name.to_string(),
                    format!("{directory}/{name}.{suffix}"),
                    Some(body.to_string()),
                );
            }
        }
    }
    objects(&org.catalog, &mut maker);
    for flow in [
        "Lead_Assignment",
        "Case_Escalation",
        "Invoice_Reminder",
        "Opportunity_Close_Checks",
        "Contact_Welcome_Email",
        "Account_Owner_Sync",
    ] {
        maker.add("Flow", flow.to_string(), format!("flows/{flow}.flow"), None);
    }
    for profile in [
        "Admin",
        "Standard",
        "ReadOnly",
        "Sales Representative",
        "Support Agent",
    ] {
        maker.add(
            "Profile",
            profile.to_string(),
            format!("profiles/{profile}.profile"),
            None,
        );
    }
    for set in [
        "Invoice_Manager",
        "Backup_Integration",
        "Support_Supervisor",
    ] {
        maker.add(
            "PermissionSet",
            set.to_string(),
            format!("permissionsets/{set}.permissionset"),
            None,
        );
    }
    let foldered: [(&str, &str, &str, &[&str]); 4] = [
        (
            "EmailTemplate",
            "Sales_Templates",
            "email",
            &["Welcome", "Renewal_Reminder", "Quote_Sent"],
        ),
        (
            "EmailTemplate",
            "Support_Templates",
            "email",
            &["Case_Received", "Case_Closed"],
        ),
        (
            "Report",
            "Sales_Reports",
            "reports",
            &["Pipeline_By_Stage", "Won_This_Quarter", "Top_Accounts"],
        ),
        (
            "Report",
            "Support_Reports",
            "reports",
            &["Open_Cases_By_Priority", "Escalations"],
        ),
    ];
    for (kind, folder, directory, members) in foldered {
        let folder_type = FOLDER_TYPES
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or("Folder", |(_, f)| *f);
        maker.add(
            folder_type,
            folder.to_string(),
            format!("{directory}/{folder}"),
            None,
        );
        let suffix = if kind == "Report" { "report" } else { "email" };
        for member in members {
            maker.add(
                kind,
                format!("{folder}/{member}"),
                format!("{directory}/{folder}/{member}.{suffix}"),
                None,
            );
        }
    }
    for resource in ["CompanyLogo", "ChartLibrary"] {
        maker.add(
            "StaticResource",
            resource.to_string(),
            format!("staticresources/{resource}.resource"),
            None,
        );
    }
    maker.add(
        "CustomLabels",
        "CustomLabels".to_string(),
        "labels/CustomLabels.labels".to_string(),
        None,
    );
    // A large org's bulk: flows, and every other one a report in a folder of 100.
    for i in 0..extra {
        if i % 2 == 0 {
            let name = format!("Generated_Flow_{i:06}");
            maker.add("Flow", name.clone(), format!("flows/{name}.flow"), None);
        } else {
            let folder = format!("Archive_{:04}", i / 200);
            if i % 200 == 1 {
                maker.add(
                    "ReportFolder",
                    folder.clone(),
                    format!("reports/{folder}"),
                    None,
                );
            }
            let name = format!("{folder}/Report_{i:06}");
            maker.add(
                "Report",
                name.clone(),
                format!("reports/{name}.report"),
                None,
            );
        }
    }
    let mut made = maker.made;
    made.sort_by(|a, b| (&a.kind, &a.full_name).cmp(&(&b.kind, &b.full_name)));
    made
}

/// A CustomObject per object the org's describe has (standard and custom), with its custom
/// fields and a layout each.
fn objects(catalog: &Catalog, maker: &mut Maker) {
    for object in catalog.objects.iter().filter(|o| o.createable) {
        let name = &object.name;
        let mut fields = String::new();
        for field in object.fields.iter().filter(|f| f.custom) {
            fields.push_str(&field_xml(field));
            maker.add(
                "CustomField",
                format!("{name}.{}", field.name),
                format!("objects/{name}.object"),
                Some(field_xml(field)),
            );
        }
        // A custom object's rule, in its file as Salesforce writes it (after sharingModel).
        let rules = if object.custom {
            format!(
                "    <validationRules>\n        <fullName>Name_Required</fullName>\n        <active>true</active>\n        <errorConditionFormula>ISBLANK(Name)</errorConditionFormula>\n        <errorMessage>Every {} needs a name.</errorMessage>\n    </validationRules>\n",
                object.label
            )
        } else {
            String::new()
        };
        let inner = format!(
            "{fields}    <label>{}</label>\n    <pluralLabel>{}</pluralLabel>\n    <sharingModel>ReadWrite</sharingModel>\n{rules}",
            object.label, object.label_plural
        );
        maker.add(
            "CustomObject",
            name.clone(),
            format!("objects/{name}.object"),
            Some(xml_file("CustomObject", &inner)),
        );
        maker.add(
            "Layout",
            format!("{name}-{} Layout", object.label),
            format!("layouts/{name}-{} Layout.layout", object.label),
            None,
        );
    }
}

/// A custom field as a CustomObject file holds it.
fn field_xml(field: &super::super::catalog::FieldDef) -> String {
    let kind = match field.field_type.name() {
        "string" => "Text",
        "textarea" => "LongTextArea",
        "reference" => "MasterDetail",
        "currency" => "Currency",
        "date" => "Date",
        "picklist" => "Picklist",
        "boolean" => "Checkbox",
        "double" | "int" => "Number",
        other => other,
    };
    format!(
        "    <fields>\n        <fullName>{}</fullName>\n        <label>{}</label>\n        <type>{kind}</type>\n    </fields>\n",
        field.name, field.label
    )
}

/// The file of a component no other part of the org defines: a small document of its type.
fn generated_source(kind: &str, full_name: &str) -> String {
    let label = leaf(full_name).replace('_', " ");
    let inner = match kind {
        "ReportFolder" | "EmailFolder" => return String::new(),
        "Flow" => format!(
            "    <apiVersion>62.0</apiVersion>\n    <label>{label}</label>\n    <processType>AutoLaunchedFlow</processType>\n    <status>Active</status>\n"
        ),
        "Profile" => "    <custom>false</custom>\n    <userLicense>Salesforce</userLicense>\n".to_string(),
        "PermissionSet" => format!("    <hasActivationRequired>false</hasActivationRequired>\n    <label>{label}</label>\n"),
        "Report" => format!(
            "    <format>Summary</format>\n    <name>{label}</name>\n    <reportType>Opportunity</reportType>\n    <scope>organization</scope>\n"
        ),
        "EmailTemplate" => return format!("Hello {{!Contact.FirstName}},\n\n{label}.\n"),
        "StaticResource" => return format!("/* {label} */\n"),
        "CustomLabels" => "    <labels>\n        <fullName>Greeting</fullName>\n        <language>en_US</language>\n        <protected>false</protected>\n        <shortDescription>Greeting</shortDescription>\n        <value>Hello</value>\n    </labels>\n".to_string(),
        "Layout" => "    <layoutSections>\n        <label>Information</label>\n        <style>TwoColumnsTopToBottom</style>\n    </layoutSections>\n".to_string(),
        _ => String::new(),
    };
    xml_file(kind, &inner)
}
