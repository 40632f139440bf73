//! Which objects and fields to back up: describeGlobal, include/exclude globs, then describe of
//! each chosen object. What cannot be backed up is skipped with the reason, for the coverage
//! report.

use reqwest::Method;

use super::client::SalesforceClient;
use super::links::LINK_OBJECT;
use crate::source::{BodyField, Coverage, Field, ObjectPlan, SourceError};
use crate::text::glob::glob;

/// What Salesforce's file objects say of their bodies: (object, body field, size, checksum,
/// file name, parent record).
type BodyFields = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
);
const BODY_FIELDS: &[BodyFields] = &[
    (
        "ContentVersion",
        "VersionData",
        "ContentSize",
        Some("Checksum"),
        "PathOnClient",
        "ContentDocumentId",
    ),
    ("Attachment", "Body", "BodyLength", None, "Name", "ParentId"),
    ("Document", "Body", "BodyLength", None, "Name", "FolderId"),
];

fn body_field(object: &str, field: &str) -> BodyField {
    match BODY_FIELDS
        .iter()
        .find(|(o, f, ..)| *o == object && *f == field)
    {
        Some((_, _, size, checksum, name, parent)) => BodyField {
            field: field.to_string(),
            size_field: Some(size.to_string()),
            checksum_field: checksum.map(str::to_string),
            name_field: Some(name.to_string()),
            parent_field: Some(parent.to_string()),
        },
        // Another object's body: known by its record's last change alone.
        None => BodyField {
            field: field.to_string(),
            name_field: Some("Name".to_string()),
            ..BodyField::default()
        },
    }
}

pub async fn discover(
    client: &SalesforceClient,
    version: &str,
    include: &[String],
    exclude: &[String],
) -> Result<(Vec<ObjectPlan>, Coverage), SourceError> {
    let global = client
        .call(
            Method::GET,
            &format!("/services/data/v{version}/sobjects"),
            None,
        )
        .await?;
    let mut plans = Vec::new();
    let mut coverage = Coverage::default();
    let names: Vec<String> = global["sobjects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["name"].as_str().map(str::to_string))
        .collect();
    for pattern in include {
        if !names.iter().any(|name| glob(pattern, name)) {
            let close =
                crate::text::suggest::did_you_mean(pattern, names.iter().map(String::as_str))
                    .map(str::to_string);
            coverage.unmatched.push((pattern.clone(), close));
        }
    }
    for object in global["sobjects"].as_array().cloned().unwrap_or_default() {
        let name = object["name"].as_str().unwrap_or_default().to_string();
        let chosen =
            include.iter().any(|p| glob(p, &name)) && !exclude.iter().any(|p| glob(p, &name));
        if !chosen {
            coverage.excluded.push(name);
            continue;
        }
        if object["queryable"] != true || object["retrieveable"] != true {
            coverage
                .skipped
                .push((name, "not queryable through the API".into()));
            continue;
        }
        let describe = client
            .call(
                Method::GET,
                &format!("/services/data/v{version}/sobjects/{name}/describe"),
                None,
            )
            .await?;
        let mut fields = Vec::new();
        let mut schema_fields = Vec::new();
        let mut bodies: Vec<BodyField> = Vec::new();
        for field in describe["fields"].as_array().cloned().unwrap_or_default() {
            let field_name = field["name"].as_str().unwrap_or_default().to_string();
            let kind = field["type"].as_str().unwrap_or_default().to_string();
            schema_fields.push(serde_json::json!({
                "name": field_name,
                "type": kind,
                "length": field["length"],
                "nillable": field["nillable"],
                "createable": field["createable"],
                "updateable": field["updateable"],
                "referenceTo": field["referenceTo"],
                "externalId": field["externalId"],
                "unique": field["unique"],
                "custom": field["custom"],
            }));
            if matches!(kind.as_str(), "address" | "location") {
                continue;
            }
            if kind == "base64" {
                // Bulk queries refuse a body and REST queries give only its URL: bodies are
                // read one per call, by the engine's file pass.
                bodies.push(body_field(&name, &field_name));
                continue;
            }
            fields.push(Field {
                name: field_name,
                kind,
            });
        }
        // A body's describing fields are only as good as the record has them.
        for body in &mut bodies {
            for described in [
                &mut body.size_field,
                &mut body.checksum_field,
                &mut body.name_field,
                &mut body.parent_field,
            ] {
                if described
                    .as_ref()
                    .is_some_and(|f| !fields.iter().any(|field| &field.name == f))
                {
                    *described = None;
                }
            }
        }
        schema_fields.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        let incremental = fields.iter().any(|f| f.name == "SystemModstamp");
        // A removed link is gone from every query (no recycle bin, no queryAll).
        let removals_unseen = name == LINK_OBJECT;
        coverage.backed_up.push(name.clone());
        plans.push(ObjectPlan {
            schema: serde_json::json!({"name": name, "label": describe["label"], "custom": describe["custom"], "fields": schema_fields}),
            name,
            fields,
            incremental,
            always_full: None,
            removals_unseen,
            narrowed: None,
            scope: None,
            bodies,
        });
    }
    plans.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((plans, coverage))
}
