//! Components' files through `retrieve` and `checkRetrieveStatus`: chunks planned to stay
//! under the documented limits (10,000 files, 39 MB zipped), and a chunk the org refuses with
//! `LIMIT_EXCEEDED` anyway split in two until each half goes through; a single component too
//! large to retrieve is reported, never dropped unseen.

use std::collections::BTreeMap;
use std::io::Read as _;

use base64::Engine as _;

use super::super::client::SalesforceClient;
use super::list::{Listed, MetadataType};
use crate::source::SourceError;

/// The most files a retrieve may hold (package.xml included).
pub const MAX_FILES: usize = 10_000;
/// Files planned per retrieve: below the limit, as bundles may hold more than guessed.
const PLANNED_FILES: usize = 9_000;
/// The most bytes one unzipped file may have (the org's own limit is 600 MB for a retrieve).
const MAX_FILE_BYTES: u64 = 600 * 1024 * 1024;

/// What a retrieve brought back for one component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retrieved {
    /// Path -> content: text files as they are, others as bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Why its files could not be retrieved, if they could not.
    pub problem: Option<String>,
    /// The org no longer has it (deleted since it was listed).
    pub gone: bool,
}

/// Chunks of `components` each planned under the file limit.
pub fn plan_chunks<'a>(
    components: &'a [&'a Listed],
    types: &[MetadataType],
) -> Vec<Vec<&'a Listed>> {
    let mut chunks: Vec<Vec<&Listed>> = Vec::new();
    let mut files = 1;
    for component in components {
        let weight = types
            .iter()
            .find(|t| t.name == component.retrieve_as)
            .map_or(2, MetadataType::files_per_component);
        match chunks.last_mut() {
            Some(chunk) if files + weight <= PLANNED_FILES => {
                chunk.push(component);
                files += weight;
            }
            _ => {
                chunks.push(vec![component]);
                files = 1 + weight;
            }
        }
    }
    chunks
}

/// The files of every component in `chunk`, splitting it while the org says it is too large.
/// Returns them by component Id.
pub async fn retrieve(
    client: &SalesforceClient,
    version: &str,
    chunk: Vec<&Listed>,
) -> Result<BTreeMap<String, Retrieved>, SourceError> {
    let mut out = BTreeMap::new();
    let mut pending = vec![chunk];
    while let Some(chunk) = pending.pop() {
        match retrieve_once(client, version, &chunk).await? {
            Attempt::Done(files) => out.extend(files),
            Attempt::TooLarge(_) if chunk.len() > 1 => {
                let mut first = chunk;
                let second = first.split_off(first.len() / 2);
                pending.push(second);
                pending.push(first);
            }
            Attempt::TooLarge(message) => {
                out.insert(
                    chunk[0].id(),
                    Retrieved {
                        files: BTreeMap::new(),
                        problem: Some(format!(
                            "too large to retrieve on its own (Salesforce: {message})"
                        )),
                        gone: false,
                    },
                );
            }
        }
    }
    Ok(out)
}

enum Attempt {
    Done(BTreeMap<String, Retrieved>),
    /// `LIMIT_EXCEEDED`, with the org's message.
    TooLarge(String),
}

async fn retrieve_once(
    client: &SalesforceClient,
    version: &str,
    chunk: &[&Listed],
) -> Result<Attempt, SourceError> {
    let mut by_type: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for component in chunk {
        by_type
            .entry(component.retrieve_as.as_str())
            .or_default()
            .push(component.full_name.as_str());
    }
    let mut request = format!(
        "<retrieveRequest><apiVersion>{0}</apiVersion><singlePackage>true</singlePackage><unpackaged>",
        sfsoap::escape(version)
    );
    for (kind, members) in &by_type {
        request.push_str("<types>");
        for member in members {
            request.push_str(&format!("<members>{}</members>", sfsoap::escape(member)));
        }
        request.push_str(&format!("<name>{}</name></types>", sfsoap::escape(kind)));
    }
    request.push_str(&format!(
        "<version>{}</version></unpackaged></retrieveRequest>",
        sfsoap::escape(version)
    ));
    let status = super::run_async(
        client,
        ("retrieve", &request),
        ("checkRetrieveStatus", "<includeZip>true</includeZip>"),
        "the next run tries again",
    )
    .await?;
    let id = status
        .child_text("id")
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    let text = |name: &str| status.child_text(name).map(str::trim).unwrap_or_default();
    if text("status") != "Succeeded" {
        let (code, message) = (text("errorStatusCode"), text("errorMessage"));
        if code == "LIMIT_EXCEEDED" {
            return Ok(Attempt::TooLarge(message.to_string()));
        }
        return Err(SourceError::Api {
            status: 200,
            code: code.to_string(),
            message: format!("the metadata retrieve {id} failed: {message}"),
        });
    }
    // Components asked for that the org could not find: gone since they were listed.
    let mut problems: BTreeMap<String, String> = BTreeMap::new();
    for message in status.children_named("messages") {
        let problem = message.child_text("problem").unwrap_or_default().trim();
        if let Some(component) = chunk.iter().find(|c| {
            problem.contains(&format!("'{}'", c.retrieve_as))
                && (problem.contains(&format!("'{}'", c.full_name))
                    || problem.contains(&format!("'{}/'", c.full_name)))
        }) {
            problems.insert(component.id(), problem.to_string());
        }
    }
    let zip = base64::engine::general_purpose::STANDARD
        .decode(text("zipFile").as_bytes())
        .map_err(|e| SourceError::Network(format!("the retrieve {id}'s zip is not base64: {e}")))?;
    let files = unzip(&zip).map_err(|e| {
        SourceError::Network(format!("the retrieve {id}'s zip cannot be read: {e}"))
    })?;
    let mut out = BTreeMap::new();
    for component in chunk {
        let mut mine = BTreeMap::new();
        let meta = format!("{}-meta.xml", component.file_name);
        let inside = format!("{}/", component.file_name);
        for (path, bytes) in files.range(component.file_name.clone()..) {
            let belongs = *path == component.file_name
                || *path == meta
                || (!component.folder && path.starts_with(&inside));
            if belongs {
                mine.insert(path.clone(), bytes.clone());
            } else if !path.starts_with(&component.file_name) {
                break;
            }
        }
        let problem = match (mine.is_empty(), problems.remove(&component.id())) {
            (_, Some(problem)) => Some(problem),
            (true, None) => Some("the retrieve brought back no file of it".to_string()),
            (false, None) => None,
        };
        let gone = mine.is_empty()
            && problem
                .as_deref()
                .is_some_and(|p| p.contains("cannot be found"));
        out.insert(
            component.id(),
            Retrieved {
                files: mine,
                problem,
                gone,
            },
        );
    }
    Ok(Attempt::Done(out))
}

/// Every file of a zip by path, `package.xml` left out.
fn unzip(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let mut files = BTreeMap::new();
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).map_err(|e| e.to_string())?;
        if file.is_dir() {
            continue;
        }
        let Some(path) = file.enclosed_name() else {
            return Err(format!("the entry {:?} leaves the archive", file.name()));
        };
        let path = path.to_string_lossy().replace('\\', "/");
        let path = path
            .strip_prefix("unpackaged/")
            .unwrap_or(&path)
            .to_string();
        if path == "package.xml" {
            continue;
        }
        let mut content = Vec::new();
        (&mut file)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut content)
            .map_err(|e| format!("{path}: {e}"))?;
        if content.len() as u64 > MAX_FILE_BYTES {
            return Err(format!("{path} is larger than {MAX_FILE_BYTES} bytes"));
        }
        files.insert(path, content);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(kind: &str, name: &str, file: &str, folder: bool) -> Listed {
        Listed {
            kind: kind.into(),
            retrieve_as: kind.into(),
            full_name: name.into(),
            file_name: file.into(),
            created_ms: 0,
            modified_ms: 0,
            modified: String::new(),
            modified_by: String::new(),
            folder,
        }
    }

    #[test]
    fn chunks_stay_under_the_file_limit_counting_meta_files() {
        let types = vec![MetadataType {
            name: "ApexClass".into(),
            directory: "classes".into(),
            suffix: Some("cls".into()),
            in_folder: false,
            meta_file: true,
        }];
        let all: Vec<Listed> = (0..10_000)
            .map(|i| {
                listed(
                    "ApexClass",
                    &format!("C{i}"),
                    &format!("classes/C{i}.cls"),
                    false,
                )
            })
            .collect();
        let refs: Vec<&Listed> = all.iter().collect();
        let chunks = plan_chunks(&refs, &types);
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 10_000);
        assert!(chunks.len() >= 3, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| 2 * c.len() < PLANNED_FILES));
    }
}
