//! The GitHub Actions workflows of a config repository (`.github/workflows/*.yml`), as far as
//! the manifests' rules care: which ones run `cairn apply`, and which environment variables
//! their steps are given. A secret that no step maps never reaches cairn on the runner.

use std::collections::BTreeSet;

use serde_json::Value;

use super::tree::{ConfigTree, FileContent};
use crate::error::Error;

pub const WORKFLOWS_DIR: &str = ".github/workflows";

/// One workflow file.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// Path in the config repository, `/`-separated.
    pub rel: String,
    /// Whether a step runs `cairn apply` (through the action or a shell line).
    pub runs_apply: bool,
    /// Variables the `env` of the workflow, of a job that runs apply, or of such a step maps.
    pub mapped: BTreeSet<String>,
}

/// The workflows that parse; the others are GitHub's to complain about.
pub fn read(tree: &ConfigTree) -> Result<Vec<Workflow>, Error> {
    let mut out = Vec::new();
    for name in tree.list_files(WORKFLOWS_DIR)? {
        if !(name.ends_with(".yml") || name.ends_with(".yaml")) {
            continue;
        }
        let rel = format!("{WORKFLOWS_DIR}/{name}");
        let Some(FileContent::Bytes(bytes)) = tree.read(&rel)? else {
            continue;
        };
        if let Ok(value) = serde_yaml::from_slice::<Value>(&bytes) {
            out.push(parse(rel, &value));
        }
    }
    Ok(out)
}

fn env_keys(node: &Value, into: &mut BTreeSet<String>) {
    if let Some(env) = node.get("env").and_then(Value::as_object) {
        into.extend(env.keys().cloned());
    }
}

/// Whether a step runs `cairn apply`: the action with `command: apply`, or a shell line.
pub fn step_runs_apply(step: &Value) -> bool {
    let action = step
        .get("uses")
        .and_then(Value::as_str)
        .is_some_and(|uses| uses.contains("cairn"))
        && step.pointer("/with/command").and_then(Value::as_str) == Some("apply");
    let shell = step
        .get("run")
        .and_then(Value::as_str)
        .is_some_and(|run| run.contains("cairn apply"));
    action || shell
}

pub fn parse(rel: String, workflow: &Value) -> Workflow {
    let mut mapped = BTreeSet::new();
    let mut runs_apply = false;
    let jobs = workflow.get("jobs").and_then(Value::as_object);
    for job in jobs.into_iter().flat_map(|jobs| jobs.values()) {
        let steps = job.get("steps").and_then(Value::as_array);
        let applying: Vec<&Value> = steps
            .into_iter()
            .flatten()
            .filter(|s| step_runs_apply(s))
            .collect();
        if applying.is_empty() {
            continue;
        }
        runs_apply = true;
        env_keys(job, &mut mapped);
        for step in applying {
            env_keys(step, &mut mapped);
        }
    }
    if runs_apply {
        env_keys(workflow, &mut mapped);
    }
    Workflow {
        rel,
        runs_apply,
        mapped,
    }
}

/// Every `*Env` setting of a manifest that names a variable: (JSON pointer, variable).
pub fn named_variables(value: &Value) -> Vec<(String, String)> {
    fn walk(value: &Value, pointer: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let here = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                    match child {
                        Value::String(name) if key.ends_with("Env") => {
                            out.push((here, name.clone()));
                        }
                        _ => walk(child, &here, out),
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{pointer}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_steps_that_apply_count_and_their_env_is_collected() {
        let workflow: Value = serde_yaml::from_str(
            r#"
env: {TOP: x}
jobs:
  plan:
    env: {PLAN_ONLY: x}
    steps:
      - uses: cairn-backup/cairn@v0
        with: {command: plan}
        env: {NOT_APPLY: x}
  apply:
    env: {JOB: x}
    steps:
      - uses: actions/checkout@v4
        env: {CHECKOUT: x}
      - uses: cairn-backup/cairn@v0
        with: {command: apply}
        env: {STEP: x}
"#,
        )
        .expect("yaml");
        let parsed = parse("w.yml".into(), &workflow);
        assert!(parsed.runs_apply);
        let mapped: Vec<&str> = parsed.mapped.iter().map(String::as_str).collect();
        assert_eq!(mapped, ["JOB", "STEP", "TOP"]);
        let plan_only: Value =
            serde_yaml::from_str("jobs: {p: {steps: [{run: cairn plan}]}}").expect("yaml");
        assert!(!parse("p.yml".into(), &plan_only).runs_apply);
        let shell: Value =
            serde_yaml::from_str("jobs: {a: {steps: [{run: 'cairn apply --now', env: {K: v}}]}}")
                .expect("yaml");
        assert_eq!(parse("s.yml".into(), &shell).mapped.len(), 1);
    }

    #[test]
    fn every_env_setting_is_found_with_its_pointer() {
        let task: Value = serde_json::json!({
            "source": {"auth": {"refreshToken": {"clientIdEnv": "A", "refreshTokenEnv": "B"}}},
            "notifications": [{"slack": {"webhookUrlEnv": "C"}}],
            "name": "NotEnv"
        });
        let found = named_variables(&task);
        assert_eq!(
            found,
            [
                (
                    "/notifications/0/slack/webhookUrlEnv".to_string(),
                    "C".to_string()
                ),
                (
                    "/source/auth/refreshToken/clientIdEnv".to_string(),
                    "A".to_string()
                ),
                (
                    "/source/auth/refreshToken/refreshTokenEnv".to_string(),
                    "B".to_string()
                ),
            ]
        );
    }
}
