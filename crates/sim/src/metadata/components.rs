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
}

/// Every component of the org: its Apex from `tooling`, an object per describe, the rest
/// generated from the seed.
pub fn generate(org: &Org, tooling: &Org, seed: u64) -> Vec<Component> {
    let mut rng = Rng::new(seed ^ 0x3E7A);
    let now = org.clock.now();
    let mut counter = 0u64;
    let mut made = Vec::new();
    let mut add = |kind: &str, full_name: String, file_name: String, rng: &mut Rng| {
        counter += 1;
        let created = now - (60 + rng.below(700) as i64) * DAY_MS;
        let modified = created + rng.below(50) as i64 * DAY_MS;
        made.push(Component {
            kind: kind.to_string(),
            full_name,
            file_name,
            // Metadata Ids have prefixes of their own; one shared here keeps them unique.
            id: ids::record_id("0Md", counter),
            created,
            modified: modified.min(now),
        });
    };
    for (object, kind, suffix) in [
        ("ApexClass", "ApexClass", "cls"),
        ("ApexTrigger", "ApexTrigger", "trigger"),
    ] {
        let Some(index) = tooling.object_index(object) else {
            continue;
        };
        let def = &tooling.catalog.objects[index];
        let name_slot = def.field("Name").map(|(i, _)| i);
        for record in &tooling.tables[index].records {
            if let Some(Value::Text(name)) = name_slot.map(|i| &record.values()[i]) {
                let directory = if kind == "ApexClass" {
                    "classes"
                } else {
                    "triggers"
                };
                add(
                    kind,
                    name.to_string(),
                    format!("{directory}/{name}.{suffix}"),
                    &mut rng,
                );
            }
        }
    }
    objects(&org.catalog, &mut |kind, name, file| {
        add(kind, name, file, &mut rng)
    });
    for flow in [
        "Lead_Assignment",
        "Case_Escalation",
        "Invoice_Reminder",
        "Opportunity_Close_Checks",
        "Contact_Welcome_Email",
        "Account_Owner_Sync",
    ] {
        add(
            "Flow",
            flow.to_string(),
            format!("flows/{flow}.flow"),
            &mut rng,
        );
    }
    for profile in [
        "Admin",
        "Standard",
        "ReadOnly",
        "Sales Representative",
        "Support Agent",
    ] {
        add(
            "Profile",
            profile.to_string(),
            format!("profiles/{profile}.profile"),
            &mut rng,
        );
    }
    for set in [
        "Invoice_Manager",
        "Backup_Integration",
        "Support_Supervisor",
    ] {
        add(
            "PermissionSet",
            set.to_string(),
            format!("permissionsets/{set}.permissionset"),
            &mut rng,
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
        add(
            folder_type,
            folder.to_string(),
            format!("{directory}/{folder}"),
            &mut rng,
        );
        let suffix = if kind == "Report" { "report" } else { "email" };
        for member in members {
            add(
                kind,
                format!("{folder}/{member}"),
                format!("{directory}/{folder}/{member}.{suffix}"),
                &mut rng,
            );
        }
    }
    for resource in ["CompanyLogo", "ChartLibrary"] {
        add(
            "StaticResource",
            resource.to_string(),
            format!("staticresources/{resource}.resource"),
            &mut rng,
        );
    }
    add(
        "CustomLabels",
        "CustomLabels".to_string(),
        "labels/CustomLabels.labels".to_string(),
        &mut rng,
    );
    made.sort_by(|a, b| (&a.kind, &a.full_name).cmp(&(&b.kind, &b.full_name)));
    made
}

/// A CustomObject per object the org's describe has (standard and custom), with its custom
/// fields and a layout each.
fn objects(catalog: &Catalog, add: &mut dyn FnMut(&str, String, String)) {
    for object in catalog.objects.iter().filter(|o| o.createable) {
        let name = &object.name;
        add(
            "CustomObject",
            name.clone(),
            format!("objects/{name}.object"),
        );
        add(
            "Layout",
            format!("{name}-{} Layout", object.label),
            format!("layouts/{name}-{} Layout.layout", object.label),
        );
        for field in object.fields.iter().filter(|f| f.custom) {
            add(
                "CustomField",
                format!("{name}.{}", field.name),
                format!("objects/{name}.object"),
            );
        }
    }
}
