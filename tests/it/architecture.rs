//! The library's layers, checked from its source (ARCHITECTURE.md draws them): a module imports
//! only from its own layer or the layers below, the modules' imports form no cycle, and no file
//! grows past 600 lines without saying why at its top.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. A module may import from its own layer and every layer below it.
const LAYERS: &[&[&str]] = &[
    &[
        "time",
        "text",
        "git_process",
        "templates",
        "exit",
        "progress",
    ],
    &["store"],
    &["snapshot"],
    &["search", "source"],
    &["backup", "restore"],
    &["error"],
    &["manifest", "gitops"],
    &["diff", "state"],
    &["ops", "notify", "project"],
    &["plan"],
    &["reconcile"],
    &["commands"],
    &["cli"],
];

/// Imports against the layers that are known, each with what removes it. The list may only
/// shrink: an import that is gone must leave it too.
const KNOWN_UPWARD: &[(&str, &str, &str)] = &[];

/// Files longer than the limit that say nothing about it yet, each with what splits it.
const KNOWN_LONG: &[(&str, &str)] = &[];

const LONG: usize = 600;
/// What a long file's top says (within its first doc lines) to explain its length.
const REASON: &str = "Long because";

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("source directory")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The top-level module a file of src/ belongs to (None for lib.rs and main.rs).
fn module_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root().join("src")).ok()?;
    let first = relative.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// Every `crate::x` path in the text outside comments, as the module `x`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let preceded_by_ident = rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            if !preceded_by_ident {
                if let Some(group) = after.strip_prefix('{') {
                    // `crate::{a, b::c}`
                    let inner = group.split('}').next().unwrap_or_default();
                    for item in inner.split(',') {
                        let name: String = item
                            .trim()
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if !name.is_empty() {
                            found.insert(name);
                        }
                    }
                } else {
                    let name: String = after
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.insert(name);
                    }
                }
            }
            rest = after;
        }
    }
    found
}

/// Module → the modules it imports, over the whole of src/.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(&root().join("src"), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(&file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("source file");
        let entry = graph.entry(module.clone()).or_default();
        for imported in imports(&text) {
            // `crate::Error` is the error module's re-export.
            let imported = if imported == "Error" {
                "error".to_string()
            } else {
                imported
            };
            if imported != module {
                entry.insert(imported);
            }
        }
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[test]
fn the_parser_finds_imports_in_every_form() {
    let found = imports(
        "use crate::store::{Store, StoreError};\nuse crate::{diff, time::now_ms};\n    let x = crate::text::printable(v); // crate::not_this\nfn f() -> my_crate::Other {}\n",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["diff", "store", "text", "time"]
    );
}

#[test]
fn every_module_has_a_layer_and_imports_only_downwards() {
    let graph = graph();
    let mut problems = Vec::new();
    for module in graph.keys() {
        if layer_of(module).is_none() {
            problems.push(format!(
                "src/{module} is in no layer: add it to LAYERS (and to ARCHITECTURE.md)"
            ));
        }
    }
    let mut known_seen = BTreeSet::new();
    for (module, imported) in &graph {
        let Some(own) = layer_of(module) else {
            continue;
        };
        for other in imported {
            let Some(theirs) = layer_of(other) else {
                continue;
            };
            if theirs <= own {
                continue;
            }
            match KNOWN_UPWARD
                .iter()
                .find(|(from, to, _)| from == module && to == other)
            {
                Some(known) => {
                    known_seen.insert(*known);
                }
                None => problems.push(format!(
                    "src/{module} (layer {own}) imports src/{other} (layer {theirs}), which is above it"
                )),
            }
        }
    }
    for known in KNOWN_UPWARD {
        if !known_seen.contains(known) {
            problems.push(format!(
                "the known upward import {} -> {} is gone: remove it from KNOWN_UPWARD",
                known.0, known.1
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_modules_imports_form_no_cycle() {
    let graph = graph();
    let allowed =
        |from: &str, to: &str| KNOWN_UPWARD.iter().any(|(f, t, _)| *f == from && *t == to);
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        allowed: &dyn Fn(&str, &str) -> bool,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        cycles: &mut Vec<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<&str> = path[at..].to_vec();
            cycle.push(node);
            cycles.push(cycle.join(" -> "));
            return;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if !allowed(node, next) {
                visit(next, graph, allowed, path, done, cycles);
            }
        }
        path.pop();
        done.insert(node);
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(
            node,
            &graph,
            &allowed,
            &mut Vec::new(),
            &mut done,
            &mut cycles,
        );
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

/// The library says what it does through what it returns, `Progress` and notices; only the
/// command line (and the binary) print.
#[test]
fn only_the_command_line_prints() {
    let mut files = Vec::new();
    sources(&root().join("src"), &mut files);
    let mut printing = Vec::new();
    for file in files {
        let relative = file.strip_prefix(root()).unwrap_or(&file).to_path_buf();
        if relative.starts_with("src/cli") || relative == Path::new("src/main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if [
                "println!",
                "eprintln!",
                "print!(",
                "eprint!(",
                "io::stdout()",
                "io::stderr()",
            ]
            .iter()
            .any(|p| code.contains(p))
            {
                printing.push(format!("{}:{}: {}", relative.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        printing.is_empty(),
        "printing outside src/cli:\n{}",
        printing.join("\n")
    );
}

#[test]
fn no_file_is_long_without_a_reason_at_its_top() {
    let mut files = Vec::new();
    sources(&root().join("src"), &mut files);
    for entry in std::fs::read_dir(root().join("crates"))
        .expect("crates")
        .flatten()
    {
        sources(&entry.path().join("src"), &mut files);
    }
    let mut problems = Vec::new();
    let mut known_seen = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source file");
        let relative = file
            .strip_prefix(root())
            .expect("under the root")
            .to_string_lossy()
            .into_owned();
        let lines = text.lines().count();
        let top: String = text
            .lines()
            .take_while(|l| l.starts_with("//!") || l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let known = KNOWN_LONG.iter().find(|(path, _)| *path == relative);
        if let Some(known) = known {
            known_seen.insert(known.0);
        }
        if lines > LONG && !top.contains(REASON) && known.is_none() {
            problems.push(format!(
                "{relative} has {lines} lines: split it, or say at its top why not (\"{REASON} …\")"
            ));
        }
        if lines <= LONG && known.is_some() {
            problems.push(format!(
                "{relative} is {lines} lines now: remove it from KNOWN_LONG"
            ));
        }
    }
    for (path, _) in KNOWN_LONG {
        if !known_seen.contains(path) {
            problems.push(format!("{path} is gone: remove it from KNOWN_LONG"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The names of the `fn`s declared between `start` and the end of its block.
fn functions_in_block(text: &str, start: &str) -> BTreeSet<String> {
    let Some(at) = text.find(start) else {
        return BTreeSet::new();
    };
    let mut depth = 0usize;
    let mut end = text.len();
    for (i, c) in text[at..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = at + i;
                    break;
                }
            }
            _ => {}
        }
    }
    text[at..end]
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let rest = line
                .strip_prefix("fn ")
                .or_else(|| line.strip_prefix("async fn "))?;
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            Some(name)
        })
        .collect()
}

#[test]
fn the_tasks_connector_forwards_every_method_of_the_trait() {
    // A method the trait gives a default and the wrapper does not forward would answer with
    // the default ("this source keeps no …") for every task, whatever its source can do.
    let trait_text =
        std::fs::read_to_string(root().join("src/source/connector.rs")).expect("the trait's file");
    let wrapper =
        std::fs::read_to_string(root().join("src/project/connect.rs")).expect("the wrapper's file");
    let declared = functions_in_block(&trait_text, "pub trait Connector");
    let forwarded = functions_in_block(&wrapper, "impl Connector for TaskConnector");
    assert!(declared.len() > 20, "{declared:?}");
    let missing: Vec<&String> = declared.difference(&forwarded).collect();
    assert!(
        missing.is_empty(),
        "not forwarded by TaskConnector: {missing:?}"
    );
}
