//! Loading a config repository: every file read, parsed, checked against its schema and the
//! semantic rules, and typed when it is clean. All problems of all files are collected; nothing
//! stops at the first.

use serde_json::Value;

use super::diagnostic::Diagnostic;
use super::model::{BackupTask, Defaults, Repository, RestoreManifest};
use super::render::{SourceText, Sources};
use super::rules::{self, LITERAL_SECRET, ManifestFile, RuleContext};
use super::schema::{self, ManifestKind};
use super::span::{LineIndex, Pos, Span};
use super::tree::{ConfigTree, FileContent, MAX_FILE_BYTES};
use super::yaml::{self, YamlError};
use crate::error::Error;

pub const REPOSITORY_FILE: &str = "cairn.yaml";
pub const TASKS_DIR: &str = "tasks";
pub const RESTORES_DIR: &str = "restores";
pub const TEMPLATES_DIR: &str = "templates";

/// A task that passed every check, with repository defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedTask {
    /// Path in the config repository.
    pub path: String,
    pub task: BackupTask,
}

/// A restore manifest that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRestore {
    /// Path in the config repository.
    pub path: String,
    pub restore: RestoreManifest,
}

/// Everything known about a config repository at one revision.
#[derive(Debug, Default)]
pub struct LoadedConfig {
    /// The repository manifest, when it is valid.
    pub repository: Option<Repository>,
    /// The valid tasks, sorted by file name.
    pub tasks: Vec<LoadedTask>,
    /// The valid restore manifests, sorted by file name.
    pub restores: Vec<LoadedRestore>,
    pub diagnostics: Vec<Diagnostic>,
    /// Texts of the files read, for rendering diagnostics.
    pub sources: Sources,
    /// Manifest files read (cairn.yaml and task files).
    pub files: usize,
    /// Task files found, valid or not.
    pub task_files: usize,
}

impl LoadedConfig {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

pub fn load(tree: &ConfigTree) -> Result<LoadedConfig, Error> {
    let mut config = LoadedConfig::default();
    let mut files = Vec::new();

    let repository_display = tree.display(REPOSITORY_FILE);
    match read_manifest(tree, REPOSITORY_FILE, ManifestKind::Repository, &mut config)? {
        Some(file) => files.push(file),
        None if config.files == 0 => config.diagnostics.push(
            Diagnostic::error(
                "repo/missing-config",
                repository_display,
                match tree.revision() {
                    Some(rev) => format!("no {REPOSITORY_FILE} at revision `{rev}`"),
                    None => format!("no {REPOSITORY_FILE} in this directory"),
                },
            )
            .help(format!(
                "a config repository has {REPOSITORY_FILE} at its root (kind: Repository) and one file per task in {TASKS_DIR}/; pass its directory with -C DIR, or run `cairn init` here to create one"
            )),
        ),
        None => {}
    }

    let task_names = manifest_names(tree, TASKS_DIR)?;
    config.task_files = task_names.len();
    for name in &task_names {
        let rel = format!("{TASKS_DIR}/{name}");
        if let Some(file) = read_manifest(tree, &rel, ManifestKind::Task, &mut config)? {
            files.push(file);
        }
    }

    for name in manifest_names(tree, RESTORES_DIR)? {
        let rel = format!("{RESTORES_DIR}/{name}");
        if let Some(file) = read_manifest(tree, &rel, ManifestKind::Restore, &mut config)? {
            files.push(file);
        }
    }

    for file in &files {
        schema::check(file.kind, &file.doc, &file.display, &mut config.diagnostics);
    }
    let templates = tree.list_files(TEMPLATES_DIR)?;
    let mut template_sources = std::collections::BTreeMap::new();
    for name in &templates {
        if let Some(FileContent::Bytes(bytes)) = tree.read(&format!("{TEMPLATES_DIR}/{name}"))?
            && let Ok(text) = String::from_utf8(bytes)
        {
            template_sources.insert(name.clone(), text);
        }
    }
    let workflows = super::workflows::read(tree)?;
    let context = RuleContext {
        workflows: &workflows,
        templates: &templates,
        template_sources,
        templates_display: format!("{}/", tree.display(TEMPLATES_DIR)),
    };
    rules::check_all(&files, &context, &mut config.diagnostics);
    one_diagnostic_per_node(&mut config);

    config.repository = files
        .iter()
        .find(|f| f.kind == ManifestKind::Repository)
        .filter(|f| is_clean(&config.diagnostics, &f.display))
        .and_then(|f| typed::<Repository>(f, &mut config.diagnostics));
    let defaults = config
        .repository
        .as_ref()
        .map(|r| r.defaults.clone())
        .unwrap_or_default();
    for file in files.iter().filter(|f| f.kind == ManifestKind::Task) {
        if !is_clean(&config.diagnostics, &file.display) {
            continue;
        }
        if let Some(task) = effective_task(file, &defaults, &mut config.diagnostics) {
            config.tasks.push(LoadedTask {
                path: file.rel.clone(),
                task,
            });
        }
    }

    for file in files.iter().filter(|f| f.kind == ManifestKind::Restore) {
        if !is_clean(&config.diagnostics, &file.display) {
            continue;
        }
        if let Some(restore) = typed::<RestoreManifest>(file, &mut config.diagnostics) {
            config.restores.push(LoadedRestore {
                path: file.rel.clone(),
                restore,
            });
        }
    }

    config
        .diagnostics
        .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Ok(config)
}

/// The YAML files of a folder of manifests, sorted.
fn manifest_names(tree: &ConfigTree, dir: &str) -> Result<Vec<String>, Error> {
    Ok(tree
        .list_files(dir)?
        .into_iter()
        .filter(|name| {
            !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
        })
        .collect())
}

/// Reads and parses one manifest; problems become diagnostics and the file is left out.
fn read_manifest(
    tree: &ConfigTree,
    rel: &str,
    kind: ManifestKind,
    config: &mut LoadedConfig,
) -> Result<Option<ManifestFile>, Error> {
    let display = tree.display(rel);
    let Some(content) = tree.read(rel)? else {
        return Ok(None);
    };
    config.files += 1;
    let bytes = match content {
        FileContent::TooLarge(size) => {
            config.diagnostics.push(
                Diagnostic::error(
                    "yaml/too-large",
                    display,
                    format!(
                        "the file is {} KiB; manifests are limited to {} KiB",
                        size / 1024,
                        MAX_FILE_BYTES / 1024
                    ),
                )
                .at(Some(Span::point(Pos::START)))
                .help("a manifest describes one task in a few dozen lines; check that this is the file you meant to put here"),
            );
            return Ok(None);
        }
        FileContent::Bytes(bytes) => bytes,
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid_up_to = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            // Only the valid prefix is kept to quote, so the bad byte's line shows up to it.
            let prefix = String::from_utf8_lossy(&bytes[..valid_up_to]).into_owned();
            let at = LineIndex::new(&prefix).pos_of_offset(valid_up_to);
            config.diagnostics.push(
                Diagnostic::error(
                    "yaml/encoding",
                    display.clone(),
                    "the file is not valid UTF-8",
                )
                .at(Some(Span::point(at)))
                .label("invalid byte here")
                .help("save the file as UTF-8"),
            );
            config.sources.insert(
                display,
                SourceText {
                    text: prefix,
                    redactions: Vec::new(),
                },
            );
            return Ok(None);
        }
    };
    let parsed = yaml::parse(&text).map_err(|e| point_at_tab(clamp_to_text(e, &text), &text));
    config.sources.insert(
        display.clone(),
        SourceText {
            text,
            redactions: Vec::new(),
        },
    );
    match parsed {
        Ok(doc) => Ok(Some(ManifestFile {
            kind,
            rel: rel.to_string(),
            display,
            doc,
        })),
        Err(error) => {
            config.diagnostics.push(yaml_diagnostic(error, display));
            Ok(None)
        }
    }
}

/// The parser may report an error at end of input on a line past the last one; point at the end
/// of the text instead.
fn clamp_to_text(error: YamlError, text: &str) -> YamlError {
    match error {
        YamlError::Syntax { at, message } => {
            let index = LineIndex::new(text);
            let at = index.pos_of_offset(index.offset(at));
            YamlError::Syntax { at, message }
        }
        other => other,
    }
}

/// The parser reports a tab where it began the token it was scanning; the tab itself is what the
/// user must fix.
fn point_at_tab(error: YamlError, text: &str) -> YamlError {
    match error {
        YamlError::Syntax { at, message } if message.contains("tab") => {
            let index = LineIndex::new(text);
            let line_start = index.line_range(at.line).start;
            let at = text[line_start..]
                .find('\t')
                .map_or(at, |i| index.pos_of_offset(line_start + i));
            YamlError::Syntax { at, message }
        }
        other => other,
    }
}

fn yaml_diagnostic(error: YamlError, file: String) -> Diagnostic {
    match error {
        YamlError::Syntax { at, message } => {
            let help = if message.contains("tab") {
                "indent with spaces: YAML does not allow tabs for indentation"
            } else {
                "check the indentation and quoting on this line and the one before it"
            };
            Diagnostic::error("yaml/syntax", file, "invalid YAML")
                .at(Some(Span::point(at)))
                .label(message)
                .help(help)
        }
        YamlError::Empty => Diagnostic::error("yaml/empty", file, "the file holds no manifest")
            .at(Some(Span::point(Pos::START)))
            .help("write a manifest here (`cairn add salesforce` writes a task), or delete the file"),
        YamlError::MultipleDocuments { at } => Diagnostic::error(
            "yaml/multiple-documents",
            file,
            "a manifest file holds one YAML document",
        )
        .at(Some(at))
        .label("a second document starts here")
        .help("put each task in its own file under tasks/"),
        YamlError::DuplicateKey { key, at, first } => Diagnostic::error(
            "yaml/duplicate-key",
            file,
            format!("key `{key}` appears twice in the same mapping"),
        )
        .at(Some(at))
        .label("set again here")
        .related(first, "first set here")
        .help("keep one of them: YAML parsers disagree on which one wins"),
        YamlError::ComplexKey { at } => Diagnostic::error(
            "yaml/complex-key",
            file,
            "mapping keys must be plain names",
        )
        .at(Some(at))
        .label("a list or mapping used as a key")
        .help("write keys as plain words, such as `name:`"),
        YamlError::TooDeep { at } => Diagnostic::error(
            "yaml/too-deep",
            file,
            format!("the document nests deeper than {} levels", yaml::MAX_DEPTH),
        )
        .at(Some(Span::point(at.start)))
        .label("too deep")
        .help("manifests nest a few levels at most; check for stray brackets"),
        YamlError::TooManyNodes { at } => Diagnostic::error(
            "yaml/too-many-nodes",
            file,
            format!("the document expands to more than {} values", yaml::MAX_NODES),
        )
        .at(Some(Span::point(at.start)))
        .label("limit reached here")
        .help("aliases (`*name`) that refer to other aliases multiply; write the values out instead"),
        YamlError::UnsupportedTag { tag, at } => Diagnostic::error(
            "yaml/tag",
            file,
            format!("the YAML tag `{tag}` is not supported in manifests"),
        )
        .at(Some(at))
        .label("custom tag")
        .help("remove the tag: manifests use plain YAML strings, numbers, booleans, lists and mappings"),
        YamlError::UnknownAlias { at } => Diagnostic::error(
            "yaml/unknown-alias",
            file,
            "this alias refers to no anchor",
        )
        .at(Some(at))
        .label("unknown alias")
        .help("define the anchor (`&name`) before the alias (`*name`) that uses it"),
    }
}

/// One diagnostic per node, the most important kept: a literal secret outranks everything
/// else about its node (nothing else may quote it), and a schema error outranks semantic rules
/// (a malformed template name need not also be reported missing). The secret's text is masked in
/// every snippet of the file.
fn one_diagnostic_per_node(config: &mut LoadedConfig) {
    fn rank(d: &Diagnostic) -> u8 {
        if d.rule == LITERAL_SECRET {
            2
        } else if d.rule.starts_with("schema/") {
            1
        } else {
            0
        }
    }
    let mut best: std::collections::HashMap<(String, String), u8> =
        std::collections::HashMap::new();
    for d in &config.diagnostics {
        if let Some(pointer) = &d.pointer {
            let entry = best.entry((d.file.clone(), pointer.clone())).or_default();
            *entry = (*entry).max(rank(d));
        }
    }
    config.diagnostics.retain(|d| match &d.pointer {
        Some(pointer) => best
            .get(&(d.file.clone(), pointer.clone()))
            .is_none_or(|&top| rank(d) >= top),
        None => true,
    });
    for d in config
        .diagnostics
        .iter()
        .filter(|d| d.rule == LITERAL_SECRET)
    {
        if let (Some(source), Some(span)) = (config.sources.get_mut(&d.file), d.span) {
            source.redactions.push(span);
        }
    }
}

fn is_clean(diagnostics: &[Diagnostic], file: &str) -> bool {
    !diagnostics.iter().any(|d| d.is_error() && d.file == file)
}

/// Deserialises a schema-valid document. A failure here means the model and the schema
/// disagree, which is a bug in cairn, and is reported as such.
fn typed<T: serde::de::DeserializeOwned>(
    file: &ManifestFile,
    out: &mut Vec<Diagnostic>,
) -> Option<T> {
    typed_value(file.doc.value.clone(), file, out)
}

fn typed_value<T: serde::de::DeserializeOwned>(
    value: Value,
    file: &ManifestFile,
    out: &mut Vec<Diagnostic>,
) -> Option<T> {
    match serde_json::from_value(value) {
        Ok(typed) => Some(typed),
        Err(e) => {
            out.push(
                Diagnostic::error(
                    "internal/model",
                    file.display.clone(),
                    format!(
                        "cairn's schema accepted this {} but its model did not: {e}",
                        file.kind.name()
                    ),
                )
                .help(
                    "this is a bug in cairn; please report it with the manifest (secrets removed)",
                ),
            );
            None
        }
    }
}

/// The task as `apply` runs it: settings it leaves out come from the repository's `defaults`.
fn effective_task(
    file: &ManifestFile,
    defaults: &Defaults,
    out: &mut Vec<Diagnostic>,
) -> Option<BackupTask> {
    let mut value = file.doc.value.clone();
    if let (Value::Object(task), Ok(Value::Object(defaults))) =
        (&mut value, serde_json::to_value(defaults))
    {
        for (key, default) in defaults {
            task.entry(key).or_insert(default);
        }
    }
    typed_value(value, file, out)
}
