//! Which metadata an org has: its types (`describeMetadata`), chosen by the task's globs, and
//! each type's components with their file properties (`listMetadata`, at most three queries a
//! call; a foldered type's folders first, then the components of each folder, since wildcards
//! do not reach into folders).

use serde::{Deserialize, Serialize};

use super::super::client::SalesforceClient;
use crate::source::SourceError;
use crate::text::glob::glob;

/// The most queries one `listMetadata` call takes.
const QUERIES_PER_LIST: usize = 3;
/// The folder of foldered components filed in none of the org's folders.
const UNFILED: &str = "unfiled$public";

/// A metadata type as `describeMetadata` describes it, and as the plan's schema keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataType {
    pub name: String,
    pub directory: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    pub in_folder: bool,
    pub meta_file: bool,
}

impl MetadataType {
    /// The type a foldered type's folders are listed as (`ReportFolder`, `EmailFolder`).
    pub fn folder_type(&self) -> String {
        match self.name.as_str() {
            "EmailTemplate" => "EmailFolder".to_string(),
            name => format!("{name}Folder"),
        }
    }

    /// How many files one component brings into a retrieve, at a guess: bundles bring
    /// several; a limit crossed anyway splits the retrieve.
    pub fn files_per_component(&self) -> usize {
        if self.name.ends_with("Bundle") {
            8
        } else if self.meta_file {
            2
        } else {
            1
        }
    }
}

/// One component as `listMetadata` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its type as listed (`ApexClass`, or a folder type such as `ReportFolder`).
    pub kind: String,
    /// The type a retrieve names it by (a folder is retrieved as its foldered type).
    pub retrieve_as: String,
    pub full_name: String,
    /// Its path in a retrieve (`classes/Invoice.cls`; a folder's is `reports/Sales`).
    pub file_name: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub modified: String,
    pub modified_by: String,
    /// A folder: its files are its `-meta.xml` only, not what it holds.
    pub folder: bool,
}

impl Listed {
    /// Its Id among the rows: `Type:FullName`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.kind, self.full_name)
    }
}

/// The org's metadata types.
pub async fn describe(
    client: &SalesforceClient,
    version: &str,
) -> Result<Vec<MetadataType>, SourceError> {
    let answer = client
        .metadata(
            "describeMetadata",
            &format!("<asOfVersion>{}</asOfVersion>", sfsoap::escape(version)),
        )
        .await?;
    let result = answer
        .body
        .child("result")
        .ok_or_else(|| unreadable("describeMetadata"))?;
    let mut types: Vec<MetadataType> = result
        .children_named("metadataObjects")
        .filter_map(|t| {
            let text = |name: &str| t.child_text(name).map(str::trim).unwrap_or_default();
            let name = text("xmlName");
            (!name.is_empty()).then(|| MetadataType {
                name: name.to_string(),
                directory: text("directoryName").to_string(),
                suffix: Some(text("suffix").to_string()).filter(|s| !s.is_empty()),
                in_folder: text("inFolder") == "true",
                meta_file: text("metaFile") == "true",
            })
        })
        .collect();
    types.sort_by(|a, b| a.name.cmp(&b.name));
    types.dedup_by(|a, b| a.name == b.name);
    Ok(types)
}

/// The types `include` and `exclude` choose, and the patterns that chose none.
pub fn choose(
    types: Vec<MetadataType>,
    include: &[String],
    exclude: &[String],
) -> (Vec<MetadataType>, Vec<(String, Option<String>)>) {
    let unmatched = include
        .iter()
        .filter(|pattern| !types.iter().any(|t| glob(pattern, &t.name)))
        .map(|pattern| {
            let close =
                crate::text::suggest::did_you_mean(pattern, types.iter().map(|t| t.name.as_str()))
                    .map(str::to_string);
            (pattern.clone(), close)
        })
        .collect();
    let chosen = types
        .into_iter()
        .filter(|t| {
            include.iter().any(|p| glob(p, &t.name)) && !exclude.iter().any(|p| glob(p, &t.name))
        })
        .collect();
    (chosen, unmatched)
}

/// One `listMetadata` query: a type, and for a foldered type the folder.
struct Query {
    kind: String,
    folder: Option<String>,
}

/// Every component of `types`, in Id order, and what the org would not list (a type or a
/// folder, and why): the components of those are not known this run.
pub async fn list(
    client: &SalesforceClient,
    version: &str,
    types: &[MetadataType],
) -> Result<(Vec<Listed>, Vec<(String, String)>), SourceError> {
    let mut refused = Vec::new();
    let first: Vec<Query> = types
        .iter()
        .map(|t| Query {
            kind: if t.in_folder {
                t.folder_type()
            } else {
                t.name.clone()
            },
            folder: None,
        })
        .collect();
    let mut listed = Vec::new();
    for found in run(client, version, &first, &mut refused).await? {
        // A folder may come back under its folder type or its foldered type's name.
        let Some(owner) = types
            .iter()
            .find(|t| t.name == found.kind || (t.in_folder && t.folder_type() == found.kind))
        else {
            continue;
        };
        listed.push(Listed {
            kind: if owner.in_folder {
                owner.folder_type()
            } else {
                owner.name.clone()
            },
            retrieve_as: owner.name.clone(),
            folder: owner.in_folder,
            ..found
        });
    }
    // Each folder's components, and those in no folder of the org's own (`unfiled$public`).
    let unfiled = types.iter().filter(|t| t.in_folder).map(|t| Query {
        kind: t.name.clone(),
        folder: Some(UNFILED.to_string()),
    });
    let in_folders: Vec<Query> = listed
        .iter()
        .filter(|l| l.folder)
        .map(|folder| Query {
            kind: folder.retrieve_as.clone(),
            folder: Some(folder.full_name.clone()),
        })
        .chain(unfiled)
        .collect();
    for found in run(client, version, &in_folders, &mut refused).await? {
        if types.iter().any(|t| t.name == found.kind) {
            listed.push(found);
        }
    }
    listed.sort_by_key(Listed::id);
    listed.dedup_by(|a, b| a.id() == b.id());
    Ok((listed, refused))
}

/// The queries, three to a call. A call the org refuses is asked again one query at a time,
/// so one type or folder it will not list costs only its own components; those it refuses
/// alone come back as (what, why).
async fn run(
    client: &SalesforceClient,
    version: &str,
    queries: &[Query],
    refused: &mut Vec<(String, String)>,
) -> Result<Vec<Listed>, SourceError> {
    let mut found = Vec::new();
    for batch in queries.chunks(QUERIES_PER_LIST) {
        match list_batch(client, version, batch).await {
            Ok(listed) => found.extend(listed),
            Err(SourceError::Api { message, .. }) if batch.len() == 1 => {
                refused.push((batch[0].named(), message));
            }
            Err(SourceError::Api { .. }) => {
                for query in batch {
                    match list_batch(client, version, std::slice::from_ref(query)).await {
                        Ok(listed) => found.extend(listed),
                        Err(SourceError::Api { message, .. }) => {
                            refused.push((query.named(), message));
                        }
                        Err(other) => return Err(other),
                    }
                }
            }
            Err(other) => return Err(other),
        }
    }
    Ok(found)
}

impl Query {
    /// What it lists, for messages: `type Flow`, `Report folder Sales`.
    fn named(&self) -> String {
        match &self.folder {
            Some(folder) => format!("{} folder {folder}", self.kind),
            None => format!("type {}", self.kind),
        }
    }
}

/// One `listMetadata` call of at most three queries.
async fn list_batch(
    client: &SalesforceClient,
    version: &str,
    batch: &[Query],
) -> Result<Vec<Listed>, SourceError> {
    let mut content = String::new();
    for query in batch {
        content.push_str("<queries>");
        if let Some(folder) = &query.folder {
            content.push_str(&format!("<folder>{}</folder>", sfsoap::escape(folder)));
        }
        content.push_str(&format!(
            "<type>{}</type></queries>",
            sfsoap::escape(&query.kind)
        ));
    }
    content.push_str(&format!(
        "<asOfVersion>{}</asOfVersion>",
        sfsoap::escape(version)
    ));
    let answer = client.metadata("listMetadata", &content).await?;
    let mut found = Vec::new();
    for result in answer.body.children_named("result") {
        let text = |name: &str| {
            result
                .child_text(name)
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        let (kind, full_name) = (text("type"), text("fullName"));
        if kind.is_empty() || full_name.is_empty() {
            continue;
        }
        let modified = text("lastModifiedDate");
        found.push(Listed {
            retrieve_as: kind.clone(),
            kind,
            full_name,
            file_name: text("fileName"),
            created_ms: crate::time::parse_datetime(&text("createdDate")).unwrap_or(i64::MIN),
            modified_ms: crate::time::parse_datetime(&modified).unwrap_or(i64::MIN),
            modified,
            modified_by: text("lastModifiedByName"),
            folder: false,
        });
    }
    Ok(found)
}

pub(super) fn unreadable(operation: &str) -> SourceError {
    SourceError::Network(format!(
        "the Metadata API's answer to {operation} has no result"
    ))
}
