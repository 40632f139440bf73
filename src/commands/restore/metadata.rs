//! `cairn restore --metadata Type:Name…`: components from a snapshot back into an org through
//! a deploy. The plan compares each with what the org has now (create when it is gone, update
//! with the files that differ, nothing when it is the same) and the org validates the package
//! (`checkOnly`) before anything is written; `--apply` then deploys it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::super::snapshot_access::{TaskSnapshots, resolve, usage};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::project::store_access::Env;
use crate::project::{Project, connect, store_access};
use crate::snapshot::components::{Component, read_all};
use crate::snapshot::writer::load_manifest;
use crate::source::{Connection, Connector, DeployReport};
use crate::store::lock::LockKind;
use crate::text::glob::glob;

#[derive(Debug, Clone)]
pub struct MetadataRestoreOptions {
    pub dir: PathBuf,
    pub task: String,
    /// Default `latest`.
    pub snapshot: Option<String>,
    /// `Type:FullName`, globs allowed (`Flow:*`).
    pub components: Vec<String>,
    pub to_task: Option<String>,
    pub apply: bool,
    pub wait: std::time::Duration,
    /// Asked with the plan before `apply` deploys; false leaves the org as it is.
    pub confirm: Option<fn(&str) -> bool>,
}

/// What a component's restore does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The org no longer has it.
    Create,
    /// The org's differs.
    Update,
    Unchanged,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentPlan {
    pub component: String,
    pub action: Action,
    /// For an update, the files that differ (added, changed or removed at the org).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataRestoreOutcome {
    pub task: String,
    pub snapshot: String,
    pub snapshot_time: String,
    pub target: String,
    pub account: String,
    pub plan: Vec<ComponentPlan>,
    /// The org's validation of the package (`checkOnly`); None when nothing needs deploying.
    pub validation: Option<DeployReport>,
    /// The deploy, with `--apply`.
    pub deploy: Option<DeployReport>,
    pub notes: Vec<String>,
}

pub async fn restore_metadata(
    options: &MetadataRestoreOptions,
    env: Env<'_>,
) -> Result<MetadataRestoreOutcome, Error> {
    let project = Project::open(&options.dir, env)?;
    let source = TaskSnapshots::open(&project, Some(&options.task))?;
    let snapshot = resolve(
        &source.status.snapshots,
        options.snapshot.as_deref().unwrap_or("latest"),
    )?;
    let store = project.store()?;
    let manifest = load_manifest(store, &snapshot.id)?;
    let held = read_all(store, &manifest)?;
    if held.is_empty() {
        return Err(usage(
            format!("snapshot {} holds no metadata", &snapshot.id),
            "metadata is backed up when the task's `metadata.enabled` is true (the default); restore from a snapshot taken since",
        ));
    }
    let mut chosen: Vec<Component> = Vec::new();
    for wanted in &options.components {
        let matched: Vec<&Component> = held.iter().filter(|c| glob(wanted, &c.id)).collect();
        if matched.is_empty() {
            let close =
                crate::text::suggest::did_you_mean(wanted, held.iter().map(|c| c.id.as_str()));
            return Err(usage(
                format!("snapshot {} has no component {wanted}", &snapshot.id),
                &match close {
                    Some(close) => format!("did you mean {close}? Components are named Type:FullName"),
                    None => "components are named Type:FullName (ApexClass:InvoiceService, Flow:Lead_Assignment); `cairn export --metadata` writes what the snapshot holds".into(),
                },
            ));
        }
        for component in matched {
            if !chosen.iter().any(|c| c.id == component.id) {
                chosen.push(component.clone());
            }
        }
    }
    let mut notes = Vec::new();
    chosen.retain(|c| match &c.problem {
        Some(problem) => {
            notes.push(format!(
                "{} is left out: the backup holds no files of it ({problem})",
                c.id
            ));
            false
        }
        None => true,
    });
    let target_id = options
        .to_task
        .clone()
        .unwrap_or_else(|| options.task.clone());
    let connector = connect::connector(project.task(&target_id)?, env)?;
    let account = match connector.check_connection().await {
        Connection::Connected { org_id, .. } => org_id,
        Connection::Disconnected { reason, detail } => {
            return Err(super::not_connected(&target_id, reason, &detail));
        }
    };
    let source_error = |e: crate::source::SourceError| usage(e.to_string(), &e.guidance());
    let current = connector
        .read_components(&chosen)
        .await
        .map_err(source_error)?;
    let mut plan = Vec::new();
    let mut to_deploy = Vec::new();
    for component in &chosen {
        let files = component
            .files()
            .map_err(|e| usage(e, "`cairn check --read-data` shows the damage"))?;
        let (action, differing) = match current.get(&component.id) {
            None => (Action::Create, Vec::new()),
            Some(now) => {
                let differing = differing_files(&files, now);
                match differing.is_empty() {
                    true => (Action::Unchanged, differing),
                    false => (Action::Update, differing),
                }
            }
        };
        if action != Action::Unchanged {
            to_deploy.push(component.clone());
        }
        plan.push(ComponentPlan {
            component: component.id.clone(),
            action,
            files: differing,
        });
    }
    let mut outcome = MetadataRestoreOutcome {
        task: options.task.clone(),
        snapshot: snapshot.id.clone(),
        snapshot_time: snapshot.time.clone(),
        target: target_id.clone(),
        account,
        plan,
        validation: None,
        deploy: None,
        notes,
    };
    if to_deploy.is_empty() {
        return Ok(outcome);
    }
    let validation = connector
        .deploy_components(&to_deploy, true)
        .await
        .map_err(source_error)?;
    let valid = validation.success;
    outcome.validation = Some(validation);
    if !options.apply || !valid {
        return Ok(outcome);
    }
    if let Some(ask) = options.confirm
        && !ask(&render_plan(&outcome))
    {
        outcome
            .notes
            .push("not confirmed: nothing was changed".into());
        return Ok(outcome);
    }
    // One restore at a time writes into a task's org.
    let _alone = store_access::lock(store, LockKind::Restore(target_id), options.wait)?;
    outcome.deploy = Some(
        connector
            .deploy_components(&to_deploy, false)
            .await
            .map_err(source_error)?,
    );
    Ok(outcome)
}

/// The paths whose content differs between the snapshot's files and the org's.
fn differing_files(
    snapshot: &BTreeMap<String, Vec<u8>>,
    org: &BTreeMap<String, Vec<u8>>,
) -> Vec<String> {
    let mut paths: Vec<&String> = snapshot.keys().chain(org.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter(|p| snapshot.get(*p) != org.get(*p))
        .cloned()
        .collect()
}

fn render_plan(outcome: &MetadataRestoreOutcome) -> String {
    let mut out = String::new();
    for line in &outcome.plan {
        let (marker, what) = match line.action {
            Action::Create => ('+', "create (the org no longer has it)".to_string()),
            Action::Update => ('~', format!("update: {}", line.files.join(", "))),
            Action::Unchanged => ('=', "unchanged".to_string()),
        };
        let _ = writeln!(out, "{marker} {}  {what}", line.component);
    }
    out
}

impl crate::commands::Report for MetadataRestoreOutcome {
    /// Failure when the org refused the package (in validation or deploy).
    fn exit_status(&self) -> ExitStatus {
        let refused = |r: &Option<DeployReport>| r.as_ref().is_some_and(|r| !r.success);
        match refused(&self.validation) || refused(&self.deploy) {
            true => ExitStatus::Failure,
            false => ExitStatus::Success,
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        let _ = write!(
            out,
            "restore metadata from snapshot {} ({}) of {} into {} (org {})\n\n{}",
            &self.snapshot[..self.snapshot.len().min(12)],
            self.snapshot_time,
            self.task,
            self.target,
            self.account,
            render_plan(self)
        );
        let changes = self
            .plan
            .iter()
            .filter(|p| p.action != Action::Unchanged)
            .count();
        let report = |out: &mut String, what: &str, r: &DeployReport| {
            let _ = writeln!(
                out,
                "\n{what} {}: {} ({} components)",
                r.id,
                r.status,
                r.deployed.len()
            );
            for (component, problem) in &r.failures {
                let _ = writeln!(out, "  {component}: {problem}");
            }
        };
        if let Some(validation) = &self.validation {
            report(&mut out, "validation (checkOnly) deploy", validation);
        }
        match (&self.validation, &self.deploy) {
            (None, _) => out.push_str("\nNothing to deploy: the org has every component as the snapshot holds it.\n"),
            (Some(v), None) if !v.success => out.push_str("\nThe org refused the package: nothing was changed. Fix what it names (or restore fewer components) and run again.\n"),
            (Some(_), None) => {
                let _ = writeln!(
                    out,
                    "\n{changes} to deploy. Nothing was changed. Run again with --apply to deploy."
                );
            }
            (Some(_), Some(deploy)) => {
                report(&mut out, "deploy", deploy);
                out.push_str(if deploy.success {
                    "\nRestored.\n"
                } else {
                    "\nThe deploy failed: the org rolled it back, nothing was changed.\n"
                });
            }
        }
        out
    }
}
