//! `deploy` and `checkDeployStatus`: a zip of components (Salesforce's metadata format, with
//! its `package.xml`) checked file by file — a known directory, XML that parses, Apex that
//! declares the class or trigger its file names, every member `package.xml` names present —
//! and, unless `checkOnly`, written into the org as one change (any failure writes nothing,
//! as `rollbackOnError` does). Each written component gets the org's time as its
//! `lastModifiedDate`; Apex stays the same in the Tooling API.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Read as _;

use base64::Engine as _;
use sfsoap::{Element, escape};
use sftime as time;

use super::components::{Component, FOLDER_TYPES, TYPES};

/// What the deploy asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployOptions {
    pub check_only: bool,
    pub rollback_on_error: bool,
    pub allow_missing_files: bool,
}

impl DeployOptions {
    pub fn read(operation: &Element) -> DeployOptions {
        let options = operation.child("DeployOptions");
        let flag = |name: &str, default: bool| {
            options
                .and_then(|o| o.child_text(name))
                .map_or(default, |v| v.trim() == "true")
        };
        DeployOptions {
            check_only: flag("checkOnly", false),
            rollback_on_error: flag("rollbackOnError", true),
            allow_missing_files: flag("allowMissingFiles", false),
        }
    }
}

/// One component of the zip: its type, name, the file that holds it, and its source.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub kind: String,
    pub full_name: String,
    /// As a retrieve names it (`classes/A.cls`; a folder's is `reports/Sales`).
    pub file_name: String,
    pub source: String,
}

/// A component's line in the result: a success or a failure with its problem.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: String,
    pub full_name: String,
    pub file_name: String,
    pub problem: Option<String>,
    /// Whether the org did not have it before (a success only).
    pub created: bool,
}

/// A deploy, checked (and carried out unless check-only), kept until its status is read.
pub struct Deployment {
    pub id: String,
    pub options: DeployOptions,
    pub created: i64,
    /// A failure of the whole deploy (no package.xml, a zip that cannot be read).
    pub error: Option<String>,
    pub messages: Vec<Message>,
}

impl Deployment {
    fn failures(&self) -> usize {
        self.messages.iter().filter(|m| m.problem.is_some()).count()
    }

    fn succeeded(&self) -> bool {
        self.error.is_none() && self.failures() == 0
    }
}

#[derive(Default)]
pub struct Deployments {
    counter: u64,
    open: HashMap<String, Deployment>,
}

impl Deployments {
    pub fn next_id(&mut self) -> String {
        self.counter += 1;
        super::super::ids::record_id("0Af", self.counter)
    }

    pub fn keep(&mut self, deployment: Deployment) {
        self.open.insert(deployment.id.clone(), deployment);
    }

    pub fn get(&self, id: &str) -> Option<&Deployment> {
        self.open.get(id)
    }
}

/// The files of a base64 zip by path, with the directory holding `package.xml` taken off.
fn unzip(encoded: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim().as_bytes())
        .map_err(|e| format!("the ZipFile is not base64: {e}"))?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("the ZipFile is not a zip: {e}"))?;
    let mut files = BTreeMap::new();
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).map_err(|e| e.to_string())?;
        if file.is_dir() {
            continue;
        }
        let name = file.name().map_err(|e| e.to_string())?.replace('\\', "/");
        let mut content = Vec::new();
        file.read_to_end(&mut content)
            .map_err(|e| format!("{name}: {e}"))?;
        files.insert(name, content);
    }
    let root = files
        .keys()
        .find(|p| *p == "package.xml" || p.ends_with("/package.xml"))
        .map(|p| p.trim_end_matches("package.xml").to_string())
        .ok_or("No package.xml found")?;
    Ok(files
        .into_iter()
        .filter_map(|(path, bytes)| path.strip_prefix(&root).map(|p| (p.to_string(), bytes)))
        .collect())
}

/// The members `package.xml` names, by type.
fn package_members(xml: &str) -> Result<Vec<(String, String)>, String> {
    let package = Element::parse(xml).map_err(|e| format!("package.xml: {e}"))?;
    let mut members = Vec::new();
    for types in package.children_named("types") {
        let kind = types
            .child_text("name")
            .unwrap_or_default()
            .trim()
            .to_string();
        for member in types.children_named("members") {
            members.push((
                kind.clone(),
                member.text.trim().trim_end_matches('/').to_string(),
            ));
        }
    }
    Ok(members)
}

/// The components of the zip's files, and the files no type of the org holds.
fn components_of(files: &BTreeMap<String, Vec<u8>>) -> (Vec<Incoming>, Vec<Message>) {
    let mut incoming: BTreeMap<(String, String), Incoming> = BTreeMap::new();
    let mut strays = Vec::new();
    for (path, bytes) in files {
        if path == "package.xml" || path.starts_with("destructiveChanges") {
            continue;
        }
        let Some((directory, rest)) = path.split_once('/') else {
            strays.push(stray(path, "a file outside every type's directory"));
            continue;
        };
        let Some(described) = TYPES.iter().find(|t| t.directory == directory) else {
            strays.push(stray(
                path,
                &format!("Unable to find type for directory: {directory}"),
            ));
            continue;
        };
        let meta = rest.ends_with("-meta.xml");
        let stem = rest.trim_end_matches("-meta.xml");
        let (kind, full_name, file_name) = if described.in_folder && !stem.contains('/') {
            // A folder's own file: `reports/Sales-meta.xml`.
            let folder = FOLDER_TYPES
                .iter()
                .find(|(t, _)| *t == described.name)
                .map_or("Folder", |(_, f)| *f);
            (
                folder.to_string(),
                stem.to_string(),
                format!("{directory}/{stem}"),
            )
        } else {
            let name = described
                .suffix
                .and_then(|s| stem.strip_suffix(&format!(".{s}")))
                .unwrap_or(stem);
            (
                described.name.to_string(),
                name.to_string(),
                format!("{directory}/{stem}"),
            )
        };
        let entry = incoming
            .entry((kind.clone(), full_name.clone()))
            .or_insert_with(|| Incoming {
                kind,
                full_name,
                file_name,
                source: String::new(),
            });
        // A folder's source is its -meta.xml; any other's is its main file.
        let is_folder = entry.kind.ends_with("Folder");
        if !meta || is_folder {
            entry.source = String::from_utf8_lossy(bytes).into_owned();
        }
    }
    (incoming.into_values().collect(), strays)
}

fn stray(path: &str, problem: &str) -> Message {
    Message {
        kind: String::new(),
        full_name: path.to_string(),
        file_name: path.to_string(),
        problem: Some(problem.to_string()),
        created: false,
    }
}

/// What is wrong with a component's source, if anything.
fn problem_of(component: &Incoming) -> Option<String> {
    let binary = matches!(component.kind.as_str(), "StaticResource" | "EmailTemplate");
    match component.kind.as_str() {
        "ApexClass" | "ApexTrigger" => {
            let keyword = if component.kind == "ApexClass" {
                "class"
            } else {
                "trigger"
            };
            let declared = component
                .source
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .collect::<Vec<_>>()
                .windows(2)
                .any(|w| {
                    w[0].eq_ignore_ascii_case(keyword)
                        && w[1].eq_ignore_ascii_case(&component.full_name)
                });
            (!declared).then(|| {
                format!(
                    "Invalid type: the file declares no {keyword} named {}",
                    component.full_name
                )
            })
        }
        _ if binary => None,
        _ if component.source.trim().is_empty() && component.kind.ends_with("Folder") => None,
        _ => Element::parse(&component.source)
            .err()
            .map(|e| format!("Error parsing file: {e}")),
    }
}

/// Checks the deploy's zip against `org` and returns what it would write (nothing when it
/// fails). Its messages go into `deployment`.
pub fn check(
    encoded: &str,
    options: DeployOptions,
    org: &[Component],
    deployment: &mut Deployment,
) -> Vec<Incoming> {
    let files = match unzip(encoded) {
        Ok(files) => files,
        Err(message) => {
            deployment.error = Some(message);
            return Vec::new();
        }
    };
    let package = files
        .get("package.xml")
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let named = match package_members(&package) {
        Ok(named) => named,
        Err(message) => {
            deployment.error = Some(message);
            return Vec::new();
        }
    };
    let (incoming, strays) = components_of(&files);
    deployment.messages.extend(strays);
    for (kind, member) in &named {
        let present = member == "*"
            || incoming.iter().any(|c| {
                c.full_name == *member
                    && (c.kind == *kind
                        || FOLDER_TYPES.iter().any(|(t, f)| t == kind && c.kind == *f))
            });
        if !present && !options.allow_missing_files {
            deployment.messages.push(Message {
                kind: kind.clone(),
                full_name: member.clone(),
                file_name: "package.xml".to_string(),
                problem: Some(format!(
                    "An object '{member}' of type {kind} was named in package.xml, but was not found in zipped directory"
                )),
                created: false,
            });
        }
    }
    for component in &incoming {
        let existed = org
            .iter()
            .any(|c| c.kind == component.kind && c.full_name == component.full_name);
        deployment.messages.push(Message {
            kind: component.kind.clone(),
            full_name: component.full_name.clone(),
            file_name: component.file_name.clone(),
            problem: problem_of(component),
            created: !existed,
        });
    }
    let failed = deployment.failures() > 0;
    if options.check_only || (failed && options.rollback_on_error) {
        return Vec::new();
    }
    let broken: Vec<(&str, &str)> = deployment
        .messages
        .iter()
        .filter(|m| m.problem.is_some())
        .map(|m| (m.kind.as_str(), m.full_name.as_str()))
        .collect();
    incoming
        .into_iter()
        .filter(|c| !broken.contains(&(c.kind.as_str(), c.full_name.as_str())))
        .collect()
}

/// `checkDeployStatus`'s result; component lines only when `details`.
pub fn status(deployment: &Deployment, details: bool, user: (&str, &str), now: i64) -> String {
    let date = |ms: i64| {
        let mut text = String::new();
        time::push_datetime(&mut text, ms, "Z");
        text
    };
    let succeeded = deployment.succeeded();
    let total = deployment
        .messages
        .iter()
        .filter(|m| !m.kind.is_empty())
        .count();
    let failures = deployment.failures();
    let mut out = String::from("<checkDeployStatusResponse><result>");
    let _ = write!(
        out,
        "<checkOnly>{}</checkOnly><completedDate>{}</completedDate><createdBy>{}</createdBy><createdByName>{}</createdByName><createdDate>{}</createdDate>",
        deployment.options.check_only,
        date(now),
        user.0,
        escape(user.1),
        date(deployment.created)
    );
    if details {
        out.push_str("<details>");
        for message in &deployment.messages {
            let element = if message.problem.is_some() {
                "componentFailures"
            } else {
                "componentSuccesses"
            };
            let _ = write!(
                out,
                "<{element}><changed>{}</changed><componentType>{}</componentType><created>{}</created><createdDate>{}</createdDate><deleted>false</deleted><fileName>{}</fileName><fullName>{}</fullName>",
                message.problem.is_none() && !deployment.options.check_only,
                escape(&message.kind),
                message.created && message.problem.is_none(),
                date(deployment.created),
                escape(&message.file_name),
                escape(&message.full_name)
            );
            if let Some(problem) = &message.problem {
                let _ = write!(
                    out,
                    "<problem>{}</problem><problemType>Error</problemType>",
                    escape(problem)
                );
            }
            let _ = write!(
                out,
                "<success>{}</success></{element}>",
                message.problem.is_none()
            );
        }
        out.push_str("<runTestResult><numFailures>0</numFailures><numTestsRun>0</numTestsRun><totalTime>0.0</totalTime></runTestResult></details>");
    }
    let _ = write!(out, "<done>true</done>");
    if let Some(error) = &deployment.error {
        let _ = write!(
            out,
            "<errorMessage>{}</errorMessage><errorStatusCode>UNKNOWN_EXCEPTION</errorStatusCode>",
            escape(error)
        );
    }
    let _ = write!(
        out,
        "<id>{}</id><ignoreWarnings>false</ignoreWarnings><lastModifiedDate>{}</lastModifiedDate><numberComponentErrors>{failures}</numberComponentErrors><numberComponentsDeployed>{}</numberComponentsDeployed><numberComponentsTotal>{total}</numberComponentsTotal><numberTestErrors>0</numberTestErrors><numberTestsCompleted>0</numberTestsCompleted><numberTestsTotal>0</numberTestsTotal><rollbackOnError>{}</rollbackOnError><runTestsEnabled>false</runTestsEnabled><startDate>{}</startDate><status>{}</status><success>{succeeded}</success></result></checkDeployStatusResponse>",
        deployment.id,
        date(now),
        total - failures.min(total),
        deployment.options.rollback_on_error,
        date(deployment.created),
        if succeeded { "Succeeded" } else { "Failed" }
    );
    out
}
