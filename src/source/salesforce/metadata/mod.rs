//! The org's metadata (Apex, flows, layouts, profiles, …) through the Metadata API, as one
//! object of rows the engine writes, diffs and indexes like records: one row per component,
//! Id `Type:FullName`, its files inside. Discovery chooses the types; a fetch lists every
//! component (cheap: three types a call) and retrieves in chunks only what the window needs —
//! all of them in a full pass, those modified since in an incremental — and says which
//! components the org still has, so the ones it no longer lists become deletions.

pub mod deploy;
pub mod list;
pub mod retrieve;
pub mod source_format;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde::Serialize;

use super::client::SalesforceClient;
use crate::snapshot::components::Component;
use crate::snapshot::sorter::Row;
use crate::source::{
    Coverage, FetchError, FetchWindow, Field, METADATA_OBJECT, ObjectPlan, RowSink, SourceError,
};
pub use list::MetadataType;

/// Which metadata types a task backs up: globs on type names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataScope {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// The fields of a component row, in the order its body holds them.
pub const FIELDS: &[(&str, &str)] = &[
    ("Id", "id"),
    ("type", "string"),
    ("fullName", "string"),
    ("lastModifiedDate", "datetime"),
    ("lastModifiedByName", "string"),
    ("problem", "string"),
    ("files", "map"),
    ("binaryFiles", "map"),
];

/// A component as the store keeps it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(rename = "Id")]
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    full_name: &'a str,
    last_modified_date: &'a str,
    last_modified_by_name: &'a str,
    problem: Option<&'a str>,
    /// Path -> text, for files that are UTF-8.
    files: BTreeMap<&'a str, &'a str>,
    /// Path -> base64, for the others (static resources, documents).
    binary_files: BTreeMap<&'a str, String>,
}

/// The metadata object's plan, when the scope chooses any type; coverage notes what it chose.
pub async fn plan(
    client: &SalesforceClient,
    version: &str,
    scope: &MetadataScope,
    coverage: &mut Coverage,
) -> Result<Option<ObjectPlan>, SourceError> {
    let types = list::describe(client, version).await?;
    let (chosen, unmatched) = list::choose(types, &scope.include, &scope.exclude);
    coverage.metadata_unmatched = unmatched;
    coverage.metadata_types = chosen.iter().map(|t| t.name.clone()).collect();
    if chosen.is_empty() {
        return Ok(None);
    }
    Ok(Some(ObjectPlan {
        name: METADATA_OBJECT.to_string(),
        fields: FIELDS
            .iter()
            .map(|(name, kind)| Field {
                name: name.to_string(),
                kind: kind.to_string(),
            })
            .collect(),
        incremental: true,
        always_full: None,
        removals_unseen: false,
        narrowed: None,
        // A type newly chosen has components older than any window: a change of types is a
        // full pass.
        scope: Some(coverage.metadata_types.join(",")),
        bodies: Vec::new(),
        schema: serde_json::json!({"name": METADATA_OBJECT, "types": chosen}),
    }))
}

/// The plan's types, as `plan` wrote them into its schema.
fn planned_types(plan: &ObjectPlan) -> Vec<MetadataType> {
    serde_json::from_value(plan.schema["types"].clone()).unwrap_or_default()
}

/// The components the window needs, as rows into `sink`, and every component the org lists.
pub async fn fetch<S: RowSink>(
    client: &SalesforceClient,
    version: &str,
    plan: &ObjectPlan,
    window: &FetchWindow,
    mut sink: S,
) -> Result<S, FetchError> {
    let types = planned_types(plan);
    let (listed, refused) = list::list(client, version, &types).await?;
    for (what, why) in &refused {
        sink.left_out(
            what.clone(),
            format!("the org would not list it, so its components are not known this run: {why}"),
        );
    }
    let wanted: Vec<&list::Listed> = listed
        .iter()
        .filter(|c| match window {
            FetchWindow::Full => true,
            // A component without a date cannot be placed in a window: it is fetched.
            FetchWindow::Changes { from_ms, .. } => {
                c.modified_ms == i64::MIN || c.modified_ms > *from_ms
            }
        })
        .collect();
    let mut present: BTreeSet<String> = listed.iter().map(list::Listed::id).collect();
    let since_ms = window.since_ms();
    for chunk in retrieve::plan_chunks(&wanted, &types) {
        let in_order = chunk.clone();
        let mut retrieved = retrieve::retrieve(client, version, chunk).await?;
        for component in in_order {
            let id = component.id();
            let got = retrieved.remove(&id).unwrap_or_default();
            if got.gone {
                present.remove(&id);
                continue;
            }
            if let Some(problem) = &got.problem {
                sink.left_out(id.clone(), problem.clone());
            }
            let mut binary = BTreeMap::new();
            let mut text = BTreeMap::new();
            for (path, bytes) in &got.files {
                match std::str::from_utf8(bytes) {
                    Ok(content) => {
                        text.insert(path.as_str(), content);
                    }
                    Err(_) => {
                        binary.insert(
                            path.as_str(),
                            base64::engine::general_purpose::STANDARD.encode(bytes),
                        );
                    }
                }
            }
            let body = Body {
                id: &id,
                kind: &component.kind,
                full_name: &component.full_name,
                last_modified_date: &component.modified,
                last_modified_by_name: &component.modified_by,
                problem: got.problem.as_deref(),
                files: text,
                binary_files: binary,
            };
            let body = serde_json::to_vec(&body).map_err(|e| {
                SourceError::Network(format!("component {id} cannot be encoded: {e}"))
            })?;
            sink.push(Row {
                created: since_ms.is_some_and(|since| component.created_ms > since),
                revisit: since_ms.is_some_and(|since| component.modified_ms <= since),
                deleted: false,
                stamp: component.modified_ms,
                id,
                body,
            })?;
        }
    }
    // What the org would not list may still be there: no deletion is concluded from a listing
    // with gaps (the next complete one finds them).
    if refused.is_empty() {
        sink.listed(present);
    }
    Ok(sink)
}

/// The `package.xml` that names these components, as a deploy of them needs it.
pub fn package_xml_of(components: &[Component], version: &str) -> String {
    let members: Vec<(String, String)> = components
        .iter()
        .map(|c| (package_type(&c.kind), c.full_name.clone()))
        .collect();
    deploy::package_xml(&members, version)
}

/// The type a component is retrieved and deployed as: a folder as its foldered type.
fn package_type(kind: &str) -> String {
    match kind {
        "EmailFolder" => "EmailTemplate".to_string(),
        folder if folder.ends_with("Folder") => folder.trim_end_matches("Folder").to_string(),
        kind => kind.to_string(),
    }
}

/// A snapshot's component as a listing would have it: the path its files start from.
fn as_listed(component: &Component) -> list::Listed {
    let folder = component.kind.ends_with("Folder");
    let main = component
        .paths()
        .filter(|p| !p.ends_with("-meta.xml"))
        .min_by_key(|p| p.len())
        .map(str::to_string);
    let file_name = match (folder, main) {
        (true, _) | (false, None) => component
            .paths()
            .next()
            .map(|p| p.trim_end_matches("-meta.xml").to_string())
            .unwrap_or_default(),
        // A bundle's files lie in a directory of its own, named by the component.
        (false, Some(main)) if component.kind.ends_with("Bundle") => {
            main.splitn(3, '/').take(2).collect::<Vec<_>>().join("/")
        }
        (false, Some(main)) => main,
    };
    list::Listed {
        kind: component.kind.clone(),
        retrieve_as: package_type(&component.kind),
        full_name: component.full_name.clone(),
        file_name,
        created_ms: i64::MIN,
        modified_ms: i64::MIN,
        modified: String::new(),
        modified_by: String::new(),
        folder,
    }
}

/// The org's current files of these components; absent: the org no longer has one.
pub async fn current(
    client: &SalesforceClient,
    version: &str,
    components: &[Component],
) -> Result<BTreeMap<String, crate::source::Files>, SourceError> {
    let listed: Vec<list::Listed> = components.iter().map(as_listed).collect();
    let refs: Vec<&list::Listed> = listed.iter().collect();
    let mut out = BTreeMap::new();
    for chunk in retrieve::plan_chunks(&refs, &[]) {
        let retrieved = retrieve::retrieve(client, version, chunk).await?;
        for (id, got) in retrieved {
            if !got.gone {
                out.insert(id, got.files);
            }
        }
    }
    Ok(out)
}

/// Deploys the components' files as the snapshot holds them (validation only with
/// `check_only`).
pub async fn deploy_back(
    client: &SalesforceClient,
    version: &str,
    components: &[Component],
    check_only: bool,
) -> Result<crate::source::DeployReport, SourceError> {
    let mut files = BTreeMap::new();
    let mut members = Vec::new();
    for component in components {
        files.extend(component.files().map_err(SourceError::Config)?);
        members.push((package_type(&component.kind), component.full_name.clone()));
    }
    let zip = deploy::package(&files, &members, version)
        .map_err(|e| SourceError::Config(format!("the deploy package cannot be made: {e}")))?;
    deploy::deploy(client, &zip, check_only).await
}

/// How long an asynchronous Metadata API call (a retrieve, a deploy) may run at the org.
const ASYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Starts an asynchronous call (`retrieve`, `deploy`) and polls its status (`check`, asked
/// with the call's id and `extra`) with growing pauses, as Salesforce asks, until it is done:
/// the final status's `result`. `timed_out` says what to do when it never is.
async fn run_async(
    client: &SalesforceClient,
    (start, content): (&str, &str),
    (check, extra): (&str, &str),
    timed_out: &str,
) -> Result<sfsoap::Element, SourceError> {
    let started = client.metadata(start, content).await?;
    let id = started
        .body
        .child("result")
        .and_then(|r| r.child_text("id"))
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| list::unreadable(start))?
        .to_string();
    let begun = std::time::Instant::now();
    let mut wait = std::time::Duration::ZERO;
    loop {
        tokio::time::sleep(wait).await;
        let answer = client
            .metadata(
                check,
                &format!(
                    "<asyncProcessId>{}</asyncProcessId>{extra}",
                    sfsoap::escape(&id)
                ),
            )
            .await?;
        let result = answer
            .body
            .child("result")
            .cloned()
            .ok_or_else(|| list::unreadable(check))?;
        if result.child_text("done").map(str::trim) == Some("true") {
            return Ok(result);
        }
        if begun.elapsed() > ASYNC_TIMEOUT {
            return Err(SourceError::Network(format!(
                "the metadata {start} {id} was not done after {} minutes; {timed_out}",
                ASYNC_TIMEOUT.as_secs() / 60
            )));
        }
        wait = (wait * 2).clamp(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(10),
        );
    }
}
