//! `cairn export`: a snapshot's records as open files, CSV or JSON lines, one file per object,
//! streamed (bounded memory). The files hold record data in plaintext, where the user asks.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use super::Report;
use super::snapshot_access::{TaskSnapshots, resolve};
use crate::error::Error;
use crate::project::Project;
use crate::project::store_access::Env;
use crate::snapshot::ObjectReader;
use crate::snapshot::writer::load_manifest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
    /// The metadata components' files in Salesforce's metadata format, with a `package.xml`:
    /// what `sf project deploy start --metadata-dir` deploys.
    Metadata,
    /// The file bodies, each as `OBJECT/ID/NAME`, with `files.csv` indexing them.
    Files,
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub dir: PathBuf,
    pub task: Option<String>,
    /// Default `latest`.
    pub snapshot: Option<String>,
    pub object: Option<String>,
    pub format: ExportFormat,
    pub out: PathBuf,
}

fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A JSON value as a CSV cell: null is empty, text as is, the rest as JSON.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// One file that `export` wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedFile {
    pub object: String,
    pub path: PathBuf,
    pub records: u64,
}

/// The files `export` wrote, from which snapshot.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportOutcome {
    pub snapshot: String,
    pub time: String,
    pub files: Vec<ExportedFile>,
}

impl Report for ExportOutcome {
    fn text(&self) -> String {
        let mut out = String::new();
        if let [only] = self.files.as_slice()
            && only.object == crate::snapshot::components::METADATA_OBJECT
        {
            return format!(
                "{} metadata components of snapshot {} ({}) written to {} with their package.xml; deploy them with `sf project deploy start --metadata-dir {}`\n",
                only.records,
                &self.snapshot[..self.snapshot.len().min(12)],
                self.time,
                only.path.display(),
                only.path.display()
            );
        }
        if let [only] = self.files.as_slice()
            && only.object == FILES_INDEX
        {
            return format!(
                "{} files of snapshot {} ({}) written under {}, indexed in {}; they hold the org's data in plaintext, keep them safe\n",
                only.records,
                &self.snapshot[..self.snapshot.len().min(12)],
                self.time,
                only.path.parent().unwrap_or(&only.path).display(),
                only.path.display()
            );
        }
        for file in &self.files {
            out.push_str(&format!("{:>9}  {}\n", file.records, file.path.display()));
        }
        out.push_str(&format!(
            "{} records of snapshot {} ({}) exported; the files hold record data in plaintext, keep them safe\n",
            self.files.iter().map(|f| f.records).sum::<u64>(),
            &self.snapshot[..self.snapshot.len().min(12)],
            self.time
        ));
        out
    }
}

pub fn export(options: &ExportOptions, env: Env<'_>) -> Result<ExportOutcome, Error> {
    let project = Project::open(&options.dir, env)?;
    let task = TaskSnapshots::open(&project, options.task.as_deref())?;
    let snapshot = resolve(
        &task.status.snapshots,
        options.snapshot.as_deref().unwrap_or("latest"),
    )?;
    let store = project.store()?;
    let manifest = load_manifest(store, &snapshot.id)?;
    if let Some(wanted) = &options.object
        && !manifest
            .objects
            .keys()
            .any(|o| o.eq_ignore_ascii_case(wanted))
    {
        return Err(super::snapshot_access::usage(
            format!("snapshot {} has no object {wanted}", &snapshot.id),
            &format!(
                "its objects are: {}",
                manifest
                    .objects
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    private_dirs(&options.out).map_err(io(&options.out))?;
    if options.format == ExportFormat::Metadata {
        return export_metadata(store, &manifest, options, snapshot);
    }
    if options.format == ExportFormat::Files {
        return export_files(store, &manifest, options, snapshot);
    }
    let mut files = Vec::new();
    // File bodies are exported by `--files`.
    for (object, entry) in manifest
        .objects
        .iter()
        .filter(|(o, _)| !crate::snapshot::files::is_body_object(o))
    {
        if options
            .object
            .as_deref()
            .is_some_and(|o| !o.eq_ignore_ascii_case(object))
        {
            continue;
        }
        let extension = match options.format {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl | ExportFormat::Metadata | ExportFormat::Files => "jsonl",
        };
        let path = options.out.join(format!("{object}.{extension}"));
        let file = private_file(&path).map_err(io(&path))?;
        let mut count = 0u64;
        match options.format {
            ExportFormat::Jsonl | ExportFormat::Metadata | ExportFormat::Files => {
                let mut out = BufWriter::new(file);
                for record in ObjectReader::new(store, object, entry) {
                    let (_, body) = record?;
                    out.write_all(&body)
                        .and_then(|()| out.write_all(b"\n"))
                        .map_err(io(&path))?;
                    count += 1;
                }
                out.flush().map_err(io(&path))?;
            }
            ExportFormat::Csv => {
                let mut out = csv::Writer::from_writer(BufWriter::new(file));
                let csv_error = |e: csv::Error| Error::Io {
                    path: path.clone(),
                    source: std::io::Error::other(e.to_string()),
                };
                out.write_record(&entry.fields).map_err(csv_error)?;
                for record in ObjectReader::new(store, object, entry) {
                    let (_, body) = record?;
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let row: Vec<String> =
                        entry.fields.iter().map(|f| cell(value.get(f))).collect();
                    out.write_record(&row).map_err(csv_error)?;
                    count += 1;
                }
                out.flush().map_err(io(&path))?;
            }
        }
        files.push(ExportedFile {
            object: object.clone(),
            path,
            records: count,
        });
    }
    Ok(ExportOutcome {
        snapshot: snapshot.id.clone(),
        time: snapshot.time.clone(),
        files,
    })
}

/// What `export --files` names the index it writes.
const FILES_INDEX: &str = "files.csv";

/// A file name as the org gave it, made safe to write: its last path component, without
/// control characters, never empty nor `.`/`..`.
fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    match cleaned.trim() {
        "" | "." | ".." => "body".to_string(),
        _ => cleaned,
    }
}

/// Every held file body under `out/OBJECT/ID/NAME`, streamed chunk by chunk (each checked
/// against the size and MD5 the backup recorded), and `files.csv` indexing every file the
/// snapshot knows, held or not.
fn export_files(
    store: &crate::store::Store,
    manifest: &crate::snapshot::SnapshotManifest,
    options: &ExportOptions,
    snapshot: &crate::state::status::SnapshotRow,
) -> Result<ExportOutcome, Error> {
    use crate::snapshot::files::{BodyReader, FileBody, body_object_parts};
    let objects: Vec<(&String, &crate::snapshot::ObjectEntry)> = manifest
        .objects
        .iter()
        .filter(|(name, _)| {
            body_object_parts(name).is_some_and(|(object, _)| {
                options
                    .object
                    .as_deref()
                    .is_none_or(|wanted| wanted.eq_ignore_ascii_case(object))
            })
        })
        .collect();
    if objects.is_empty() {
        return Err(super::snapshot_access::usage(
            format!("snapshot {} holds no file bodies", &snapshot.id),
            "file bodies are backed up when the task's `files.enabled` is true (the default); export a snapshot taken since",
        ));
    }
    let index_path = options.out.join(FILES_INDEX);
    let index_file = private_file(&index_path).map_err(io(&index_path))?;
    let mut index = csv::Writer::from_writer(BufWriter::new(index_file));
    let csv_error = |e: csv::Error| Error::Io {
        path: index_path.clone(),
        source: std::io::Error::other(e.to_string()),
    };
    index
        .write_record([
            "object", "id", "parent", "name", "size", "md5", "path", "missing",
        ])
        .map_err(csv_error)?;
    let mut written = 0u64;
    for (name, entry) in objects {
        let object = body_object_parts(name).map_or(name.as_str(), |(o, _)| o);
        for row in ObjectReader::new(store, name, entry) {
            let (id, bytes) = row?;
            let body = FileBody::read(name, &id, &bytes)?;
            let mut relative = String::new();
            if body.is_held() {
                relative = format!(
                    "{object}/{}/{}",
                    safe_file_name(&id),
                    safe_file_name(&body.name)
                );
                let target = options.out.join(&relative);
                if let Some(parent) = target.parent() {
                    private_dirs(parent).map_err(io(parent))?;
                }
                let mut out = BufWriter::new(private_file(&target).map_err(io(&target))?);
                for chunk in BodyReader::new(store, &body) {
                    let chunk = chunk?;
                    out.write_all(&chunk).map_err(io(&target))?;
                    crate::store::buffers::give_back(chunk);
                }
                out.flush().map_err(io(&target))?;
                written += 1;
            }
            index
                .write_record([
                    object,
                    id.as_str(),
                    body.parent.as_deref().unwrap_or_default(),
                    body.name.as_str(),
                    body.size.to_string().as_str(),
                    body.md5.as_deref().unwrap_or_default(),
                    relative.as_str(),
                    body.missing.as_ref().map_or("", |m| m.reason.as_str()),
                ])
                .map_err(csv_error)?;
        }
    }
    index.flush().map_err(io(&index_path))?;
    Ok(ExportOutcome {
        snapshot: snapshot.id.clone(),
        time: snapshot.time.clone(),
        files: vec![ExportedFile {
            object: FILES_INDEX.to_string(),
            path: index_path,
            records: written,
        }],
    })
}

/// Every component's files under `out`, as a retrieve lays them out, and the `package.xml`
/// naming them.
fn export_metadata(
    store: &crate::store::Store,
    manifest: &crate::snapshot::SnapshotManifest,
    options: &ExportOptions,
    snapshot: &crate::state::status::SnapshotRow,
) -> Result<ExportOutcome, Error> {
    let components = crate::snapshot::components::read_all(store, manifest)?;
    if components.is_empty() {
        return Err(super::snapshot_access::usage(
            format!("snapshot {} holds no metadata", &snapshot.id),
            "metadata is backed up when the task's `metadata.enabled` is true (the default); export a snapshot taken since",
        ));
    }
    let mut written = Vec::new();
    for component in &components {
        if component.problem.is_some() {
            continue;
        }
        let files = component.files().map_err(|reason| {
            Error::Store(crate::store::StoreError::CorruptBlob {
                id: component.id.clone(),
                reason,
            })
        })?;
        for (path, bytes) in files {
            let target = options.out.join(&path);
            if let Some(parent) = target.parent() {
                private_dirs(parent).map_err(io(parent))?;
            }
            private_file(&target)
                .and_then(|mut f| f.write_all(&bytes))
                .map_err(io(&target))?;
        }
        written.push(component.clone());
    }
    let package = options.out.join("package.xml");
    let xml =
        crate::source::salesforce::metadata::package_xml_of(&written, &manifest.source.api_version);
    private_file(&package)
        .and_then(|mut f| f.write_all(xml.as_bytes()))
        .map_err(io(&package))?;
    Ok(ExportOutcome {
        snapshot: snapshot.id.clone(),
        time: snapshot.time.clone(),
        files: vec![ExportedFile {
            object: crate::snapshot::components::METADATA_OBJECT.to_string(),
            path: options.out.clone(),
            records: written.len() as u64,
        }],
    })
}

/// A file of the export: it holds the org's data decrypted, so only its owner may read it
/// (0600), whatever the umask, and also when it was there before.
fn private_file(path: &std::path::Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Directories the export creates: only their owner may enter them (0700). One that exists
/// keeps its mode: the user chose it.
fn private_dirs(path: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}
