//! A component's files in Salesforce's source format, as `sf project retrieve start` lays
//! them out under a package directory: an XML-only file gets the `-meta.xml` suffix
//! (`flows/X.flow-meta.xml`), a folder its folder type's (`reports/Sales.reportFolder-meta.xml`),
//! and an object is decomposed into a file of its own and one per field, validation rule,
//! list view and the like (`objects/X/fields/Amount__c.field-meta.xml`), so a review sees each
//! change in the file it belongs to. Files with a `-meta.xml` companion (Apex, templates,
//! resources) and bundles keep their paths.

use std::collections::BTreeMap;

use sfsoap::Element;

use crate::snapshot::components::Component;
use crate::source::Files;

/// An object's child elements that get files of their own: (element, directory, suffix, type).
const DECOMPOSED: &[(&str, &str, &str, &str)] = &[
    ("fields", "fields", "field", "CustomField"),
    (
        "validationRules",
        "validationRules",
        "validationRule",
        "ValidationRule",
    ),
    ("listViews", "listViews", "listView", "ListView"),
    ("recordTypes", "recordTypes", "recordType", "RecordType"),
    ("webLinks", "webLinks", "webLink", "WebLink"),
    (
        "compactLayouts",
        "compactLayouts",
        "compactLayout",
        "CompactLayout",
    ),
    ("fieldSets", "fieldSets", "fieldSet", "FieldSet"),
    (
        "businessProcesses",
        "businessProcesses",
        "businessProcess",
        "BusinessProcess",
    ),
    (
        "sharingReasons",
        "sharingReasons",
        "sharingReason",
        "SharingReason",
    ),
    ("indexes", "indexes", "index", "Index"),
];

const XMLNS: &str = "http://soap.sforce.com/2006/04/metadata";

pub fn source_files(component: &Component) -> Result<Files, String> {
    let files = component.files()?;
    if component.kind == "CustomObject" {
        return decompose_object(component, &files);
    }
    let folder_suffix = component.kind.ends_with("Folder").then(|| {
        let mut chars = component.kind.chars();
        chars
            .next()
            .map(|first| first.to_ascii_lowercase().to_string() + chars.as_str())
            .unwrap_or_default()
    });
    let mut out = BTreeMap::new();
    for (path, bytes) in &files {
        let renamed = match &folder_suffix {
            // `reports/Sales-meta.xml` -> `reports/Sales.reportFolder-meta.xml`
            Some(suffix) => match path.strip_suffix("-meta.xml") {
                Some(stem) => format!("{stem}.{suffix}-meta.xml"),
                None => path.clone(),
            },
            None if path.ends_with("-meta.xml")
                || component.kind.ends_with("Bundle")
                || files.contains_key(&format!("{path}-meta.xml")) =>
            {
                path.clone()
            }
            None => format!("{path}-meta.xml"),
        };
        out.insert(renamed, bytes.clone());
    }
    Ok(out)
}

/// `objects/X.object` as `objects/X/X.object-meta.xml` and a file per decomposed child.
fn decompose_object(component: &Component, files: &Files) -> Result<Files, String> {
    let mut out = BTreeMap::new();
    for (path, bytes) in files {
        let Some(stem) = path
            .strip_prefix("objects/")
            .and_then(|p| p.strip_suffix(".object"))
        else {
            out.insert(path.clone(), bytes.clone());
            continue;
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|_| format!("{}: {path} is not UTF-8", component.id))?;
        let root = Element::parse(text).map_err(|e| format!("{}: {path}: {e}", component.id))?;
        let mut kept = Vec::new();
        for child in &root.children {
            let Some((_, directory, suffix, kind)) = DECOMPOSED
                .iter()
                .find(|(element, ..)| *element == child.name)
            else {
                kept.push(child);
                continue;
            };
            let name = child.child_text("fullName").unwrap_or_default().trim();
            if name.is_empty() {
                kept.push(child);
                continue;
            }
            out.insert(
                format!("objects/{stem}/{directory}/{name}.{suffix}-meta.xml"),
                document(kind, child.children.iter()).into_bytes(),
            );
        }
        out.insert(
            format!("objects/{stem}/{stem}.object-meta.xml"),
            document(&root.name, kept.into_iter()).into_bytes(),
        );
    }
    Ok(out)
}

/// A metadata XML document: `<Kind xmlns=…>` around `children`, indented four spaces a level.
fn document<'a>(kind: &str, children: impl Iterator<Item = &'a Element>) -> String {
    let mut out =
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{kind} xmlns=\"{XMLNS}\">\n");
    for child in children {
        write_element(&mut out, child, 1);
    }
    out.push_str(&format!("</{kind}>\n"));
    out
}

fn write_element(out: &mut String, element: &Element, depth: usize) {
    let indent = "    ".repeat(depth);
    out.push_str(&format!("{indent}<{}", element.name));
    for (name, value) in &element.attributes {
        if name != "xmlns" {
            out.push_str(&format!(" {name}=\"{}\"", sfsoap::escape(value)));
        }
    }
    if element.children.is_empty() {
        if element.text.is_empty() {
            out.push_str("/>\n");
        } else {
            out.push_str(&format!(
                ">{}</{}>\n",
                sfsoap::escape(&element.text),
                element.name
            ));
        }
        return;
    }
    out.push_str(">\n");
    for child in &element.children {
        write_element(out, child, depth + 1);
    }
    out.push_str(&format!("{indent}</{}>\n", element.name));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(kind: &str, name: &str, files: &[(&str, &str)]) -> Component {
        let files: BTreeMap<&str, &str> = files.iter().copied().collect();
        serde_json::from_value(serde_json::json!({
            "Id": format!("{kind}:{name}"),
            "type": kind,
            "fullName": name,
            "files": files,
        }))
        .expect("a component")
    }

    fn paths(component: &Component) -> Vec<String> {
        source_files(component)
            .expect("source files")
            .into_keys()
            .collect()
    }

    /// The paths `sf project retrieve start` writes for the same components (the simulator's
    /// CLI test checks those against the real CLI).
    #[test]
    fn paths_are_the_ones_the_salesforce_cli_writes() {
        let xml = |kind: &str| {
            format!("<?xml version=\"1.0\"?><{kind} xmlns=\"{XMLNS}\"><label>x</label></{kind}>")
        };
        assert_eq!(
            paths(&component(
                "Flow",
                "Lead_Assignment",
                &[("flows/Lead_Assignment.flow", &xml("Flow"))]
            )),
            ["flows/Lead_Assignment.flow-meta.xml"]
        );
        assert_eq!(
            paths(&component(
                "ApexClass",
                "AccountService",
                &[
                    (
                        "classes/AccountService.cls",
                        "public class AccountService {}"
                    ),
                    ("classes/AccountService.cls-meta.xml", &xml("ApexClass")),
                ]
            )),
            [
                "classes/AccountService.cls",
                "classes/AccountService.cls-meta.xml"
            ]
        );
        assert_eq!(
            paths(&component(
                "ReportFolder",
                "Sales_Reports",
                &[("reports/Sales_Reports-meta.xml", &xml("ReportFolder"))]
            )),
            ["reports/Sales_Reports.reportFolder-meta.xml"]
        );
        assert_eq!(
            paths(&component(
                "Report",
                "Sales_Reports/Pipeline_By_Stage",
                &[(
                    "reports/Sales_Reports/Pipeline_By_Stage.report",
                    &xml("Report")
                )]
            )),
            ["reports/Sales_Reports/Pipeline_By_Stage.report-meta.xml"]
        );
        assert_eq!(
            paths(&component(
                "EmailTemplate",
                "Sales_Templates/Welcome",
                &[
                    ("email/Sales_Templates/Welcome.email", "Hello"),
                    (
                        "email/Sales_Templates/Welcome.email-meta.xml",
                        &xml("EmailTemplate")
                    ),
                ]
            )),
            [
                "email/Sales_Templates/Welcome.email",
                "email/Sales_Templates/Welcome.email-meta.xml"
            ]
        );
    }

    #[test]
    fn an_object_is_decomposed_into_its_fields_and_rules() {
        let object = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CustomObject xmlns=\"{XMLNS}\">\n    <fields>\n        <fullName>Amount__c</fullName>\n        <label>Amount &amp; tax</label>\n        <type>Currency</type>\n    </fields>\n    <label>Invoice</label>\n    <validationRules>\n        <fullName>Positive</fullName>\n        <active>true</active>\n    </validationRules>\n</CustomObject>\n"
        );
        let files = source_files(&component(
            "CustomObject",
            "Invoice__c",
            &[("objects/Invoice__c.object", &object)],
        ))
        .expect("decomposed");
        let text = |path: &str| String::from_utf8(files[path].clone()).expect("UTF-8");
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            [
                "objects/Invoice__c/Invoice__c.object-meta.xml",
                "objects/Invoice__c/fields/Amount__c.field-meta.xml",
                "objects/Invoice__c/validationRules/Positive.validationRule-meta.xml",
            ]
        );
        assert_eq!(
            text("objects/Invoice__c/fields/Amount__c.field-meta.xml"),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CustomField xmlns=\"{XMLNS}\">\n    <fullName>Amount__c</fullName>\n    <label>Amount &amp; tax</label>\n    <type>Currency</type>\n</CustomField>\n"
            )
        );
        assert_eq!(
            text("objects/Invoice__c/Invoice__c.object-meta.xml"),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CustomObject xmlns=\"{XMLNS}\">\n    <label>Invoice</label>\n</CustomObject>\n"
            )
        );
    }
}
