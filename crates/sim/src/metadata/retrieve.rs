//! `retrieve` and `checkRetrieveStatus`: an unpackaged request (types with members, `*` for
//! every component of a type; foldered types only by name) answered with a zip of the
//! components' files and a `package.xml`, base64 in the status, as Salesforce answers; the
//! documented limits (10,000 files, 39 MB zipped) end a retrieve with `LIMIT_EXCEEDED`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;

use base64::Engine as _;
use sfsoap::{Element, escape};

use super::components::{Component, FOLDER_TYPES, TYPES, meta_file, xml_file};

/// The most files one retrieve may hold.
pub const MAX_FILES: usize = 10_000;
/// The most bytes one retrieve's zip may hold.
pub const MAX_ZIPPED: usize = 39 * 1024 * 1024;

/// The limits a retrieve is held to: Salesforce's by default; smaller ones (set through
/// `PUT /__sim/metadata-limits`) let a test reach them with a small org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub max_files: usize,
    pub max_zipped_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_files: MAX_FILES,
            max_zipped_bytes: MAX_ZIPPED,
        }
    }
}

/// A retrieve's outcome, kept until its status is read.
pub struct Retrieval {
    pub id: String,
    pub outcome: Result<Package, String>,
}

/// What a retrieve gathered.
pub struct Package {
    pub zip: Vec<u8>,
    /// What the status lists: package.xml, then each component retrieved.
    pub files: Vec<Component>,
    /// Members asked for that the org does not have.
    pub problems: Vec<String>,
}

#[derive(Default)]
pub struct Retrievals {
    counter: u64,
    open: HashMap<String, Retrieval>,
}

impl Retrievals {
    pub fn start(&mut self, outcome: Result<Package, String>) -> String {
        self.counter += 1;
        let id = super::super::ids::record_id("09S", self.counter);
        self.open.insert(
            id.clone(),
            Retrieval {
                id: id.clone(),
                outcome,
            },
        );
        id
    }

    pub fn get(&self, id: &str) -> Option<&Retrieval> {
        self.open.get(id)
    }
}

/// Reads `retrieveRequest` and builds the package from `components`.
pub fn build(
    request: &Element,
    components: &[Component],
    now: i64,
    limits: Limits,
) -> Result<Package, String> {
    let single = request
        .child_text("singlePackage")
        .is_some_and(|v| v.trim() == "true");
    let version = request
        .child_text("apiVersion")
        .map_or("62.0", str::trim)
        .to_string();
    let prefix = if single { "" } else { "unpackaged/" };
    let mut chosen: Vec<&Component> = Vec::new();
    let mut problems = Vec::new();
    let unpackaged = request.child("unpackaged");
    for types in unpackaged
        .into_iter()
        .flat_map(|u| u.children_named("types"))
    {
        let kind = types.child_text("name").unwrap_or_default().trim();
        let in_folder = TYPES.iter().any(|t| t.name == kind && t.in_folder);
        for written in types.children_named("members").map(|m| m.text.trim()) {
            // A foldered type names its folders with a trailing slash (`Sales_Reports/`).
            let member = written.trim_end_matches('/');
            let before = chosen.len();
            for component in components {
                let matched = if member == "*" {
                    // Wildcards do not reach into folders.
                    component.kind == kind && !in_folder
                } else {
                    component.full_name == member
                        && (component.kind == kind
                            || FOLDER_TYPES
                                .iter()
                                .any(|(t, folder)| *t == kind && component.kind == *folder))
                };
                if matched && !chosen.iter().any(|c| std::ptr::eq(*c, component)) {
                    chosen.push(component);
                }
            }
            if chosen.len() == before && member != "*" {
                problems.push(format!(
                    "Entity of type '{kind}' named '{written}' cannot be found"
                ));
            }
        }
    }
    // One file per path: an object's fields go into its object's file.
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut fields_of: BTreeMap<String, String> = BTreeMap::new();
    for component in &chosen {
        match component.kind.as_str() {
            "CustomField" => {
                fields_of
                    .entry(component.file_name.clone())
                    .or_default()
                    .push_str(&component.source);
            }
            "ReportFolder" | "EmailFolder" => {
                let inner = format!(
                    "    <accessType>Public</accessType>\n    <name>{}</name>\n    <publicFolderAccess>ReadWrite</publicFolderAccess>\n",
                    component.full_name.replace('_', " ")
                );
                files.insert(
                    format!("{}-meta.xml", component.file_name),
                    xml_file(&component.kind, &inner),
                );
            }
            _ => {
                files.insert(component.file_name.clone(), component.source.clone());
                if TYPES
                    .iter()
                    .any(|t| t.name == component.kind && t.meta_file)
                {
                    files.insert(
                        format!("{}-meta.xml", component.file_name),
                        meta_file(component),
                    );
                }
            }
        }
    }
    for (path, fields) in fields_of {
        // Fields asked for without their object come in a file of the object holding only them.
        files
            .entry(path)
            .or_insert_with(|| xml_file("CustomObject", &fields));
    }
    if files.len() + 1 > limits.max_files {
        return Err(format!(
            "LIMIT_EXCEEDED: Too many files in retrieve call, limit is: {}",
            limits.max_files
        ));
    }
    let manifest = package_xml(&chosen, &version);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut write = |path: &str, bytes: &[u8]| -> Result<(), String> {
        zip.start_file(path, options)
            .and_then(|()| zip.write_all(bytes).map_err(Into::into))
            .map_err(|e| format!("UNKNOWN_EXCEPTION: could not write the zip: {e}"))
    };
    write(&format!("{prefix}package.xml"), manifest.as_bytes())?;
    for (path, source) in &files {
        write(&format!("{prefix}{path}"), source.as_bytes())?;
    }
    let zip = zip
        .finish()
        .map_err(|e| format!("UNKNOWN_EXCEPTION: could not write the zip: {e}"))?
        .into_inner();
    if zip.len() > limits.max_zipped_bytes {
        return Err(format!(
            "LIMIT_EXCEEDED: Retrieve result has exceeded the maximum zip size of {} bytes",
            limits.max_zipped_bytes
        ));
    }
    // One entry per component (a -meta.xml has none of its own), package.xml first, made
    // when the retrieve was.
    let mut listed = vec![Component {
        kind: "Package".to_string(),
        full_name: format!("{prefix}package.xml"),
        file_name: format!("{prefix}package.xml"),
        id: String::new(),
        created: now,
        modified: now,
        source: String::new(),
    }];
    listed.extend(chosen.iter().map(|c| Component {
        file_name: format!("{prefix}{}", c.file_name),
        source: String::new(),
        ..(*c).clone()
    }));
    Ok(Package {
        zip,
        files: listed,
        problems,
    })
}

/// The `package.xml` naming what was retrieved, by type.
fn package_xml(chosen: &[&Component], version: &str) -> String {
    let mut by_type: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for component in chosen {
        by_type
            .entry(component.kind.as_str())
            .or_default()
            .push(component.full_name.as_str());
    }
    let mut inner = String::new();
    for (kind, mut members) in by_type {
        members.sort_unstable();
        inner.push_str("    <types>\n");
        for member in members {
            let _ = writeln!(inner, "        <members>{}</members>", escape(member));
        }
        let _ = writeln!(inner, "        <name>{kind}</name>\n    </types>");
    }
    let _ = writeln!(inner, "    <version>{version}</version>");
    xml_file("Package", &inner)
}

/// `checkRetrieveStatus`'s result for `retrieval`; the zip only when `include_zip`.
pub fn status(retrieval: &Retrieval, include_zip: bool, user: (&str, &str)) -> String {
    let mut out = String::from("<checkRetrieveStatusResponse><result><done>true</done>");
    match &retrieval.outcome {
        Err(message) => {
            let code = message
                .split_once(':')
                .map_or("UNKNOWN_EXCEPTION", |(c, _)| c);
            let _ = write!(
                out,
                "<errorMessage>{}</errorMessage><errorStatusCode>{code}</errorStatusCode><id>{}</id><status>Failed</status><success>false</success>",
                escape(message),
                retrieval.id
            );
        }
        Ok(package) => {
            for file in &package.files {
                super::file_properties(&mut out, "fileProperties", file, user);
            }
            let _ = write!(out, "<id>{}</id>", retrieval.id);
            for problem in &package.problems {
                let _ = write!(
                    out,
                    "<messages><fileName>unpackaged/package.xml</fileName><problem>{}</problem></messages>",
                    escape(problem)
                );
            }
            out.push_str("<status>Succeeded</status><success>true</success>");
            if include_zip {
                let _ = write!(
                    out,
                    "<zipFile>{}</zipFile>",
                    base64::engine::general_purpose::STANDARD.encode(&package.zip)
                );
            }
        }
    }
    out.push_str("</result></checkRetrieveStatusResponse>");
    out
}
