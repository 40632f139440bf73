//! Files in the simulated org: the documents, versions, links and attachments a generated org
//! holds, and their bodies read one file per call from `/sobjects/{Object}/{Id}/{Field}`, as
//! raw bytes, as Salesforce serves them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::blob::Blob;
use super::catalog::FieldType;
use super::org::{DAY_MS, Org, Rng, Value, text};
use super::server::{ApiError, State, admit, poisoned, version, with_limit_info};
use super::write::{self, Journal};

type Result<T> = std::result::Result<T, ApiError>;

/// Kinds of files a generated org holds: extension, FileType, MIME type.
const KINDS: &[(&str, &str, &str)] = &[
    ("pdf", "PDF", "application/pdf"),
    (
        "docx",
        "WORD_X",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    (
        "xlsx",
        "EXCEL_X",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("png", "PNG", "image/png"),
    ("jpg", "JPG", "image/jpeg"),
    ("csv", "CSV", "text/csv"),
    ("txt", "TEXT", "text/plain"),
];

const TOPICS: &[&str] = &[
    "Contract",
    "Quote",
    "Invoice",
    "Signed order",
    "Site photo",
    "Price list",
    "Meeting notes",
];

/// How large a generated org's files are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileSizes {
    /// Up to half a MB: quick to back up, for tests.
    #[default]
    Small,
    /// As a real org spreads them: most under a MB, some of tens of MB, one in a thousand of
    /// hundreds of MB, and one in ten thousand files near Salesforce's 2 GB (about 1 MB a file
    /// on average); never over what the object takes.
    Realistic,
}

const KB: u64 = 1024;
const MB: u64 = 1024 * 1024;

/// The largest body each kind of file takes: a ContentVersion up to 2 GB, an Attachment
/// 25 MB, a Document 5 MB.
const VERSION_MAX: u64 = 2048 * MB;
const ATTACHMENT_MAX: u64 = 25 * MB;
const DOCUMENT_MAX: u64 = 5 * MB;

/// A body's size as files in an org are spread: most are small, a few are large; at most `max`.
fn file_size(rng: &mut Rng, sizes: FileSizes, max: u64) -> u64 {
    let size = match sizes {
        FileSizes::Small => match rng.below(100) {
            0..70 => 200 + rng.below(8 * KB),
            70..95 => 8 * KB + rng.below(120 * KB),
            _ => 128 * KB + rng.below(384 * KB),
        },
        FileSizes::Realistic => match rng.below(1000) {
            0..700 => KB + rng.below(63 * KB),
            700..950 => 64 * KB + rng.below(960 * KB),
            950..999 => MB + rng.below(15 * MB),
            _ => match rng.below(10) {
                0 => 1536 * MB + rng.below(511 * MB),
                _ => 100 * MB + rng.below(200 * MB),
            },
        },
    };
    size.min(max)
}

/// A later version of `base`: the same file with a few bytes inserted somewhere, as an edit
/// leaves it.
pub(crate) fn edited(rng: &mut Rng, base: Arc<Blob>) -> Blob {
    let at = rng.below(base.len().max(1));
    let patch: Vec<u8> = (0..8 + rng.below(56))
        .map(|_| rng.below(256) as u8)
        .collect();
    Blob::Edited {
        base,
        at,
        patch: patch.into_boxed_slice(),
    }
}

/// `documents` files (each a ContentDocument with one to three versions, shared with its owner
/// and with one record) and `attachments` Attachments, on records among `parents`.
pub(crate) fn generate(
    org: &mut Org,
    rng: &mut Rng,
    documents: usize,
    attachments: usize,
    parents: &[String],
    users: &[String],
    sizes: FileSizes,
) {
    let now = org.clock.now();
    if parents.is_empty() || users.is_empty() {
        return;
    }
    for i in 0..documents {
        let (extension, file_type, _) = KINDS[rng.below(KINDS.len() as u64) as usize];
        let title = format!("{} {i}", rng.pick(TOPICS));
        let owner = users[rng.below(users.len() as u64) as usize].clone();
        let parent = parents[rng.below(parents.len() as u64) as usize].clone();
        let created = now - (rng.below(600) as i64 + 30) * DAY_MS;
        let versions = match rng.below(20) {
            0 => 3,
            1..5 => 2,
            _ => 1,
        };
        // Each later version an edit of the one before.
        let mut bodies: Vec<Arc<Blob>> = vec![Arc::new(Blob::Generated {
            seed: rng.next_u64(),
            len: file_size(rng, sizes, VERSION_MAX),
        })];
        while bodies.len() < versions {
            let before = bodies[bodies.len() - 1].clone();
            bodies.push(Arc::new(edited(rng, before)));
        }
        let Some(latest) = bodies.last() else {
            continue;
        };
        let latest_size = latest.len() as i64;
        let document = org.insert_generated("ContentDocument", created, |name| match name {
            "Title" => text(&title),
            "FileType" => text(file_type),
            "FileExtension" => text(extension),
            "ContentSize" => Value::Int(latest_size),
            "OwnerId" => text(&owner),
            _ => Value::Null,
        });
        let mut latest_id = String::new();
        for (number, body) in bodies.iter().enumerate() {
            let checksum = body.md5_hex();
            let is_latest = number + 1 == bodies.len();
            // Each later version a few days after the one before.
            let at = (created + number as i64 * 3 * DAY_MS).min(now);
            latest_id = org.insert_generated("ContentVersion", at, |name| match name {
                "ContentDocumentId" => text(&document),
                "Title" => text(&title),
                "PathOnClient" => text(&format!("{title}.{extension}")),
                "VersionData" => Value::Blob(body.clone()),
                "Checksum" => text(&checksum),
                "ContentSize" => Value::Int(body.len() as i64),
                "FileExtension" => text(extension),
                "FileType" => text(file_type),
                "IsLatest" => Value::Bool(is_latest),
                "VersionNumber" => text(&(number + 1).to_string()),
                "FirstPublishLocationId" => text(&parent),
                "OwnerId" => text(&owner),
                _ => Value::Null,
            });
        }
        // Generated, so there is nothing to undo.
        if let Some(documents) = org.object_index("ContentDocument")
            && let Some(row) = org.tables[documents].find(&document)
        {
            let latest = [("LatestPublishedVersionId", text(&latest_id))];
            write::set_derived(org, documents, row, &latest, &mut Journal::new());
        }
        for (entity, share) in [(&owner, "I"), (&parent, "V")] {
            org.insert_generated("ContentDocumentLink", created, |name| match name {
                "ContentDocumentId" => text(&document),
                "LinkedEntityId" => text(entity),
                "ShareType" => text(share),
                "Visibility" => text("AllUsers"),
                _ => Value::Null,
            });
        }
    }
    for i in 0..attachments {
        let (extension, _, mime) = KINDS[rng.below(KINDS.len() as u64) as usize];
        let body = Arc::new(Blob::Generated {
            seed: rng.next_u64(),
            len: file_size(rng, sizes, ATTACHMENT_MAX),
        });
        let parent = parents[rng.below(parents.len() as u64) as usize].clone();
        let owner = users[rng.below(users.len() as u64) as usize].clone();
        let created = now - (rng.below(900) as i64 + 30) * DAY_MS;
        let name = format!("{} {i}.{extension}", rng.pick(TOPICS));
        org.insert_generated("Attachment", created, |field| match field {
            "ParentId" => text(&parent),
            "Name" => text(&name),
            "IsPrivate" => Value::Bool(false),
            "ContentType" => text(mime),
            "BodyLength" => Value::Int(body.len() as i64),
            "Body" => Value::Blob(body.clone()),
            "OwnerId" => text(&owner),
            _ => Value::Null,
        });
    }
    // The Documents tab's files: one for every eight documents, in three shared folders or
    // in their author's personal folder.
    let folders: Vec<String> = if documents == 0 {
        Vec::new()
    } else {
        ["Marketing", "Templates", "Price lists"]
            .iter()
            .map(|name| {
                let created = now - 900 * DAY_MS;
                org.insert_generated("Folder", created, |field| match field {
                    "Name" => text(name),
                    "DeveloperName" => text(&name.replace(' ', "_")),
                    "Type" => text("Document"),
                    "AccessType" => text("Public"),
                    _ => Value::Null,
                })
            })
            .collect()
    };
    for i in 0..documents.div_ceil(8) {
        let (extension, _, mime) = KINDS[rng.below(KINDS.len() as u64) as usize];
        let body = Arc::new(Blob::Generated {
            seed: rng.next_u64(),
            len: file_size(rng, sizes, DOCUMENT_MAX),
        });
        let author = users[rng.below(users.len() as u64) as usize].clone();
        let folder = match rng.below(5) {
            0 => author.clone(),
            n => folders[(n as usize - 1) % folders.len()].clone(),
        };
        let created = now - (rng.below(900) as i64 + 30) * DAY_MS;
        let name = format!("{} {i}", rng.pick(TOPICS));
        org.insert_generated("Document", created, |field| match field {
            "Name" => text(&name),
            "DeveloperName" => text(&format!("{}_{i}", name.replace(' ', "_"))),
            "FolderId" => text(&folder),
            "ContentType" => text(mime),
            "Type" => text(extension),
            "IsPublic" => Value::Bool(false),
            "BodyLength" => Value::Int(body.len() as i64),
            "Body" => Value::Blob(body.clone()),
            "AuthorId" => text(&author),
            _ => Value::Null,
        });
    }
}

/// What the platform adds when a file or an attachment is created through the API: sizes and
/// checksum from the body; for a first version a new document, shared with its owner and with
/// the record it was published on; for a later one, the document's history moved on.
pub(crate) fn on_insert(org: &mut Org, object: usize, id: &str, journal: &mut Journal) {
    let name = org.catalog.objects[object].name.clone();
    let Some(row) = org.tables[object].find(id) else {
        return;
    };
    let value = |org: &Org, field: &str| -> Value {
        org.catalog.objects[object]
            .field(field)
            .map_or(Value::Null, |(slot, _)| {
                org.tables[object].records[row].values()[slot].clone()
            })
    };
    match name.as_str() {
        "Attachment" | "Document" => {
            if let Value::Blob(body) = value(org, "Body") {
                let length = Value::Int(body.len() as i64);
                write::set_derived(org, object, row, &[("BodyLength", length)], journal);
            }
        }
        "ContentVersion" => {
            let Value::Blob(body) = value(org, "VersionData") else {
                return;
            };
            let path = match value(org, "PathOnClient") {
                Value::Text(path) => path.to_string(),
                _ => String::new(),
            };
            let extension = path
                .rsplit_once('.')
                .map(|(_, e)| e.to_ascii_lowercase())
                .unwrap_or_default();
            let file_type = KINDS
                .iter()
                .find(|(e, _, _)| *e == extension)
                .map_or_else(|| "UNKNOWN".to_string(), |(_, t, _)| t.to_string());
            let size = Value::Int(body.len() as i64);
            let owner = value(org, "OwnerId");
            let title = value(org, "Title");
            let mut derived = vec![
                ("Checksum", text(&body.md5_hex())),
                ("ContentSize", size.clone()),
                ("FileExtension", text(&extension)),
                ("FileType", text(&file_type)),
                ("IsLatest", Value::Bool(true)),
            ];
            let (Some(documents), Some(links)) = (
                org.object_index("ContentDocument"),
                org.object_index("ContentDocumentLink"),
            ) else {
                return;
            };
            let document_fields = |latest: &str| {
                vec![
                    ("Title", title.clone()),
                    ("FileType", text(&file_type)),
                    ("FileExtension", text(&extension)),
                    ("ContentSize", size.clone()),
                    ("LatestPublishedVersionId", text(latest)),
                ]
            };
            match value(org, "ContentDocumentId") {
                Value::Text(document) => {
                    // A new version: the ones before it are no longer the latest.
                    let earlier: Vec<usize> = (0..org.tables[object].records.len())
                        .filter(|&r| r != row)
                        .filter(|&r| {
                            let record = &org.tables[object].records[r];
                            !record.is_deleted()
                                && org.catalog.objects[object]
                                    .field("ContentDocumentId")
                                    .is_some_and(|(slot, _)| {
                                        matches!(&record.values()[slot], Value::Text(d) if *d == document)
                                    })
                        })
                        .collect();
                    for &r in &earlier {
                        write::set_derived(
                            org,
                            object,
                            r,
                            &[("IsLatest", Value::Bool(false))],
                            journal,
                        );
                    }
                    derived.push(("VersionNumber", text(&(earlier.len() + 1).to_string())));
                    if let Some(at) = org.tables[documents].find(&document) {
                        write::set_derived(org, documents, at, &document_fields(id), journal);
                    }
                }
                _ => {
                    let mut fields = document_fields(id);
                    fields.push(("OwnerId", owner.clone()));
                    let document = write::insert_derived(
                        org,
                        documents,
                        |name| {
                            fields
                                .iter()
                                .find(|(n, _)| *n == name)
                                .map_or(Value::Null, |(_, v)| v.clone())
                        },
                        journal,
                    );
                    derived.push(("ContentDocumentId", text(&document)));
                    derived.push(("VersionNumber", text("1")));
                    let mut shared = vec![(owner.clone(), "I")];
                    let published = value(org, "FirstPublishLocationId");
                    if published != Value::Null && published != owner {
                        shared.push((published, "V"));
                    }
                    for (entity, share) in shared {
                        write::insert_derived(
                            org,
                            links,
                            |name| match name {
                                "ContentDocumentId" => text(&document),
                                "LinkedEntityId" => entity.clone(),
                                "ShareType" => text(share),
                                "Visibility" => text("AllUsers"),
                                _ => Value::Null,
                            },
                            journal,
                        );
                    }
                }
            }
            write::set_derived(org, object, row, &derived, journal);
        }
        // A private file shared with a record is seen by whoever sees the record.
        "ContentDocumentLink" => {
            if let (Value::Text(document), Value::Text(entity)) = (
                value(org, "ContentDocumentId"),
                value(org, "LinkedEntityId"),
            ) && !entity.starts_with("005")
            {
                org.private_documents.remove(&*document);
            }
        }
        _ => {}
    }
}

/// A file is linked to a record once: a second link between the same two is refused.
pub(crate) fn check_new_link(
    org: &Org,
    object: usize,
    changes: &[(usize, Value)],
) -> std::result::Result<(), write::WriteError> {
    let def = &org.catalog.objects[object];
    if def.name != "ContentDocumentLink" {
        return Ok(());
    }
    let (Some((document, _)), Some((entity, _))) =
        (def.field("ContentDocumentId"), def.field("LinkedEntityId"))
    else {
        return Ok(());
    };
    let given = |slot: usize| changes.iter().find(|(i, _)| *i == slot).map(|(_, v)| v);
    let (Some(Value::Text(d)), Some(Value::Text(e))) = (given(document), given(entity)) else {
        return Ok(());
    };
    let linked = org.tables[object].records.iter().any(|r| {
        !r.is_deleted()
            && matches!(&r.values()[document], Value::Text(x) if x == d)
            && matches!(&r.values()[entity], Value::Text(x) if x == e)
    });
    if linked {
        return Err(write::WriteError::new(
            "DUPLICATE_VALUE",
            format!("Document with ID: {d} is already linked with the entity with ID: {e}"),
            &["LinkedEntityId"],
        ));
    }
    Ok(())
}

/// The document a version belongs to.
pub(crate) fn document_of(org: &Org, version: &str) -> Option<String> {
    let versions = org.object_index("ContentVersion")?;
    let row = org.tables[versions].find(version)?;
    let (slot, _) = org.catalog.objects[versions].field("ContentDocumentId")?;
    match &org.tables[versions].records[row].values()[slot] {
        Value::Text(document) => Some(document.to_string()),
        _ => None,
    }
}

/// The body and file name of a document's latest version.
pub(crate) fn latest_body(org: &Org, document: &str) -> Option<(Arc<Blob>, String)> {
    let versions = org.object_index("ContentVersion")?;
    let def = &org.catalog.objects[versions];
    let slot = |name: &str| def.field(name).map(|(slot, _)| slot);
    let (of, latest, data, path) = (
        slot("ContentDocumentId")?,
        slot("IsLatest")?,
        slot("VersionData")?,
        slot("PathOnClient")?,
    );
    org.tables[versions].records.iter().find_map(|record| {
        let values = record.values();
        let mine = matches!(&values[of], Value::Text(d) if **d == *document);
        match (mine && !record.is_deleted(), &values[latest], &values[data]) {
            (true, Value::Bool(true), Value::Blob(body)) => {
                let name = match &values[path] {
                    Value::Text(path) => path.to_string(),
                    _ => String::new(),
                };
                Some((body.clone(), name))
            }
            _ => None,
        }
    })
}

/// GET `/sobjects/{Object}/{Id}/{Field}` on a `base64` field: the body's bytes, streamed.
pub async fn body(
    Shared(state): Shared<Arc<State>>,
    Path((v, object, id, field)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    version(&v)?;
    let info = admit(&state, &headers)?;
    if state.is_subrequest(&headers) {
        // The documentation says no more than that it is not supported; the wording is ours.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_API_INPUT",
            "sObject Blob Get returns binary data and isn't supported in a composite request: get each body with a call of its own",
        ));
    }
    let org = state.org.read().map_err(|_| poisoned())?;
    let index = org.object_index(&object).ok_or_else(ApiError::not_found)?;
    let def = &org.catalog.objects[index];
    let Some((slot, described)) = def.field(&field) else {
        return Err(ApiError::not_found());
    };
    if described.field_type != FieldType::Base64 {
        return Err(ApiError::not_found());
    }
    let row = super::ids::normalize(&id)
        .and_then(|id| org.tables[index].find(&id))
        .filter(|&row| org.visible(index, &org.tables[index].records[row]))
        .ok_or_else(ApiError::not_found)?;
    let record = &org.tables[index].records[row];
    if record.is_deleted() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ENTITY_IS_DELETED",
            "entity is deleted",
        ));
    }
    let Value::Blob(blob) = &record.values()[slot] else {
        return Err(ApiError::not_found());
    };
    let blob = blob.clone();
    drop(org);
    let length = blob.len();
    let mut response = Response::new(Body::from_stream(blob.stream()));
    let headers = response.headers_mut();
    // Salesforce's own spelling of the type of a body it does not describe.
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octetstream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    Ok(with_limit_info(response, &info))
}
