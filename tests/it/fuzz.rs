//! No input panics: random bytes, and valid manifests mutated with the characters YAML cares
//! about, go through the whole loader and every output format. Every diagnostic must point inside
//! the file it names.

use crate::common;

use cairn::manifest::render::{Format, Summary, render};
use cairn::manifest::{ConfigTree, load};
use proptest::prelude::*;

use common::{Test, repo_root};

fn seeds() -> Vec<String> {
    let mut seeds = Vec::new();
    let dirs = [
        repo_root().join("examples/quickstart/tasks"),
        repo_root().join("tests/fixtures/kitchen-sink"),
    ];
    for dir in dirs {
        for entry in std::fs::read_dir(dir).expect("seed directory").flatten() {
            if entry.path().extension().is_some_and(|e| e == "yaml") {
                seeds.push(std::fs::read_to_string(entry.path()).expect("seed"));
            }
        }
    }
    seeds.sort();
    seeds
}

/// Loads a repository whose only task file has these bytes, renders every format, and checks
/// each diagnostic's position against the file.
fn check(scratch: &Test, bytes: &[u8]) -> Result<(), TestCaseError> {
    std::fs::write(scratch.path().join("tasks/fuzz.yaml"), bytes).expect("write case");
    let config = load(&ConfigTree::work_tree(scratch.path()).expect("scratch")).expect("load");
    let text = String::from_utf8_lossy(bytes);
    let lines = text.split('\n').count();
    for diagnostic in &config.diagnostics {
        if let Some(span) = diagnostic.span {
            prop_assert!(
                span.start.line >= 1 && span.start.line <= lines && span.end >= span.start,
                "{} points outside the file: {:?}",
                diagnostic.rule,
                span
            );
        }
        prop_assert!(!diagnostic.message.is_empty());
    }
    let summary = Summary::count(&config.diagnostics, config.files, config.task_files);
    for format in [Format::Text, Format::Json, Format::Github] {
        let out = render(format, &config.diagnostics, &config.sources, summary, false);
        prop_assert!(!out.is_empty());
    }
    Ok(())
}

fn scratch() -> Test {
    Test::from_dir(&repo_root().join("tests/corpus/base")).file("tasks/fuzz.yaml", "")
}

/// Characters that change what YAML means.
const YAML_NOISE: &[&str] = &[
    ":", " ", "\n", "\t", "-", "[", "]", "{", "}", "&a", "*a", "!", "!!str", "|", ">", "'", "\"",
    "#", ",", "?", "%", "@", "`", "---", "...", "<<: ", "\u{feff}", "é", "本", "\\", "~", "0x",
    ".inf",
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, usize),
    Delete(usize, usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Indent(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0..YAML_NOISE.len()).prop_map(|(at, noise)| Mutation::Insert(at, noise)),
        (any::<usize>(), 1usize..12).prop_map(|(at, len)| Mutation::Delete(at, len)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), 0usize..5).prop_map(|(line, by)| Mutation::Indent(line, by)),
    ]
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let n = lines.len();
    match *mutation {
        Mutation::Insert(at, noise) => {
            let at = at % (chars.len() + 1);
            let mut out: String = chars[..at].iter().collect();
            out.push_str(YAML_NOISE[noise]);
            out.extend(&chars[at..]);
            out
        }
        Mutation::Delete(at, len) => {
            let at = at % (chars.len() + 1);
            let end = (at + len).min(chars.len());
            chars[..at].iter().chain(&chars[end..]).collect()
        }
        Mutation::DuplicateLine(line) => {
            let line = line % n;
            lines.insert(line, lines[line].clone());
            lines.join("\n")
        }
        Mutation::SwapLines(a, b) => {
            lines.swap(a % n, b % n);
            lines.join("\n")
        }
        Mutation::Indent(line, by) => {
            let line = line % n;
            lines[line] = format!("{}{}", " ".repeat(by), lines[line].trim_start());
            lines.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=20000 for a longer hunt.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let scratch = scratch();
        check(&scratch, &bytes)?;
    }

    #[test]
    fn random_yaml_shaped_text_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                (0..YAML_NOISE.len()).prop_map(|i| YAML_NOISE[i].to_string()),
                "[a-zA-Z0-9_]{1,8}",
            ],
            0..80,
        )
    ) {
        let scratch = scratch();
        check(&scratch, parts.concat().as_bytes())?;
    }

    #[test]
    fn mutated_manifests_never_panic(
        seed in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let seeds = seeds();
        let mut text = seeds[seed.index(seeds.len())].clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        let scratch = scratch();
        check(&scratch, text.as_bytes())?;
    }
}
