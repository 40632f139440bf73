//! The change summary committed with each backup (`state/<task>/diffs/<snapshot>.md`), and the
//! data-loss alerts the manifest's thresholds raise. Record values never appear; record Ids
//! only when the repository allows them (`state.recordIds`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Kind, ObjectStats};
use crate::manifest::model::Alert;
use crate::text::glob::glob;

/// Fields listed per object as "most changed".
const TOP_FIELDS: usize = 5;
/// Fields Salesforce changes on every edit (of a record, or of a metadata component):
/// listing them says nothing.
const AUDIT_FIELDS: [&str; 7] = [
    "SystemModstamp",
    "LastModifiedDate",
    "LastModifiedById",
    "LastViewedDate",
    "LastReferencedDate",
    "lastModifiedDate",
    "lastModifiedByName",
];
/// Metadata components listed by name; configuration, not record data, so always listed.
const MAX_COMPONENTS: usize = 200;

/// One metadata component changed: its `Type:FullName`, how, and for a change the files (or
/// properties) that changed.
pub type ComponentChange = (String, Kind, Vec<String>);

/// The component changes among a diff's record changes (those of the metadata object).
pub fn component_change(change: &super::RecordChange) -> Option<ComponentChange> {
    (change.object == crate::source::METADATA_OBJECT).then(|| {
        let files = match change.change {
            Kind::Modified => change
                .fields
                .iter()
                .filter(|f| !AUDIT_FIELDS.contains(&f.field.as_str()))
                .map(|f| f.field.clone())
                .collect(),
            Kind::Added | Kind::Deleted => Vec::new(),
        };
        (change.id.clone(), change.change, files)
    })
}

/// Record Ids listed per object when allowed.
const MAX_IDS: usize = 50;

/// An alert threshold crossed by one object.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Triggered {
    pub object: String,
    pub message: String,
}

/// Every threshold of every alert rule that the change crosses: record rules over each
/// object's counts (the metadata object only when a rule names it), metadata rules over the
/// components their glob matches.
pub fn alerts(
    rules: &[Alert],
    stats: &BTreeMap<String, ObjectStats>,
    components: &[ComponentChange],
) -> Vec<Triggered> {
    let mut out = component_alerts(rules, components);
    for (object, s) in stats {
        let applies = |r: &&Alert| {
            r.metadata.is_none()
                && match object.as_str() {
                    crate::source::METADATA_OBJECT => r.object == *object,
                    _ => glob(&r.object, object),
                }
        };
        for rule in rules.iter().filter(applies) {
            let percent = |n: u64| {
                if s.before == 0 {
                    0.0
                } else {
                    n as f64 * 100.0 / s.before as f64
                }
            };
            let mut crossed = Vec::new();
            if let Some(limit) = rule.deleted_percent
                && s.before > 0
                && percent(s.deleted) > limit
            {
                crossed.push(format!(
                    "{} of {} records deleted ({:.1}%, more than {limit}%)",
                    s.deleted,
                    s.before,
                    percent(s.deleted)
                ));
            }
            if let Some(limit) = rule.deleted_count
                && s.deleted > limit
            {
                crossed.push(format!("{} records deleted (more than {limit})", s.deleted));
            }
            if let Some(limit) = rule.modified_percent
                && s.before > 0
                && percent(s.modified) > limit
            {
                crossed.push(format!(
                    "{} of {} records modified ({:.1}%, more than {limit}%)",
                    s.modified,
                    s.before,
                    percent(s.modified)
                ));
            }
            if let Some(limit) = rule.modified_count
                && s.modified > limit
            {
                crossed.push(format!(
                    "{} records modified (more than {limit})",
                    s.modified
                ));
            }
            for message in crossed {
                let triggered = Triggered {
                    object: object.clone(),
                    message: format!("{object}: {message}"),
                };
                if !out.contains(&triggered) {
                    out.push(triggered);
                }
            }
        }
    }
    out
}

fn component_alerts(rules: &[Alert], components: &[ComponentChange]) -> Vec<Triggered> {
    let mut out = Vec::new();
    for rule in rules {
        let Some(pattern) = &rule.metadata else {
            continue;
        };
        let matching = |kind: Kind| -> Vec<&str> {
            components
                .iter()
                .filter(|(id, k, _)| *k == kind && glob(pattern, id))
                .map(|(id, _, _)| id.as_str())
                .collect()
        };
        for (kind, limit, how) in [
            (Kind::Added, rule.components_added, "added"),
            (Kind::Modified, rule.components_changed, "changed"),
            (Kind::Deleted, rule.components_deleted, "deleted"),
        ] {
            let Some(limit) = limit else { continue };
            let hit = matching(kind);
            if hit.len() as u64 > limit {
                const NAMED: usize = 5;
                let mut named = hit
                    .iter()
                    .take(NAMED)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ");
                if hit.len() > NAMED {
                    named.push_str(&format!(" and {} more", hit.len() - NAMED));
                }
                out.push(Triggered {
                    object: crate::source::METADATA_OBJECT.to_string(),
                    message: format!(
                        "metadata {pattern}: {} {how} (more than {limit}): {named}",
                        hit.len()
                    ),
                });
            }
        }
    }
    out
}

pub struct Summary<'a> {
    pub title: &'a str,
    pub snapshot: &'a str,
    pub time: &'a str,
    pub previous: Option<&'a str>,
    pub stats: &'a BTreeMap<String, ObjectStats>,
    pub schema_diff: &'a str,
    pub alerts: &'a [Triggered],
    /// (object, Id, change), present only when the repository allows Ids in git.
    pub ids: Option<&'a [(String, String, Kind)]>,
    /// Metadata components added, changed and deleted.
    pub components: &'a [ComponentChange],
}

pub fn render(summary: &Summary<'_>) -> String {
    let mut out = format!(
        "# {} — snapshot {}\n\n{}",
        summary.title,
        &summary.snapshot[..summary.snapshot.len().min(12)],
        summary.time
    );
    match summary.previous {
        Some(previous) => {
            let _ = writeln!(
                out,
                ", compared with {}\n",
                &previous[..previous.len().min(12)]
            );
        }
        None => out.push_str(", the first snapshot\n\n"),
    }
    if !summary.alerts.is_empty() {
        out.push_str("## Alerts\n\n");
        for alert in summary.alerts {
            let _ = writeln!(out, "- **{}**", alert.message);
        }
        out.push('\n');
    }
    out.push_str(
        "| object | added | modified | deleted | most changed fields |\n|---|---:|---:|---:|---|\n",
    );
    let mut quiet = 0;
    for (object, s) in summary.stats {
        if s.coverage.is_some() || s.files.is_some() {
            continue;
        }
        if s.changed() == 0 {
            quiet += 1;
            continue;
        }
        let mut fields: Vec<(&String, &u64)> = s
            .fields
            .iter()
            .filter(|(name, _)| !AUDIT_FIELDS.contains(&name.as_str()))
            .collect();
        fields.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = fields
            .iter()
            .take(TOP_FIELDS)
            .map(|(name, n)| format!("{name} ({n})"))
            .collect();
        let _ = writeln!(
            out,
            "| {object} | {} | {} | {} | {} |",
            s.added,
            s.modified,
            s.deleted,
            top.join(", ")
        );
    }
    if quiet > 0 {
        let _ = writeln!(out, "\n{quiet} objects unchanged.");
    }
    let coverage: Vec<String> = summary
        .stats
        .iter()
        .filter_map(|(object, s)| s.coverage_note().map(|note| format!("- {object}: {note}")))
        .collect();
    if !coverage.is_empty() {
        let _ = write!(out, "\n## Coverage changes\n\n{}\n", coverage.join("\n"));
    }
    let files = files_section(summary.stats);
    if !files.is_empty() {
        let _ = write!(out, "\n## Files\n\n{files}");
    }
    if !summary.schema_diff.is_empty() {
        let _ = write!(
            out,
            "\n## Schema changes\n\n```diff\n{}```\n",
            summary.schema_diff
        );
    }
    if !summary.components.is_empty() {
        out.push_str("\n## Metadata changes\n\n");
        for (id, kind, files) in summary.components.iter().take(MAX_COMPONENTS) {
            let how = match kind {
                Kind::Added => "added",
                Kind::Deleted => "deleted",
                Kind::Modified => "changed",
            };
            let _ = write!(out, "- {} `{}` {how}", kind.marker(), id);
            if !files.is_empty() {
                let named: Vec<String> = files.iter().map(|f| format!("`{f}`")).collect();
                let _ = write!(out, ": {}", named.join(", "));
            }
            out.push('\n');
        }
        if summary.components.len() > MAX_COMPONENTS {
            let _ = writeln!(
                out,
                "- … and {} more (`cairn diff --object {}` lists them all)",
                summary.components.len() - MAX_COMPONENTS,
                crate::source::METADATA_OBJECT
            );
        }
    }
    if let Some(ids) = summary.ids
        && !ids.is_empty()
    {
        out.push_str("\n## Records\n\n");
        let mut per_object: BTreeMap<&str, usize> = BTreeMap::new();
        for (object, id, kind) in ids {
            let n = per_object.entry(object).or_default();
            *n += 1;
            if *n <= MAX_IDS {
                let _ = writeln!(out, "    {} {object} {id}", kind.marker());
            }
        }
        for (object, n) in per_object {
            if n > MAX_IDS {
                let _ = writeln!(out, "    … and {} more in {object}", n - MAX_IDS);
            }
        }
    }
    out
}

/// One line per object of file bodies that changed: how many files, and their bytes (sizes
/// only: a file's name is the org's data).
fn files_section(stats: &BTreeMap<String, ObjectStats>) -> String {
    let mut out = String::new();
    for (object, s) in stats {
        let (Some(bytes), None) = (s.files, s.coverage) else {
            continue;
        };
        if s.changed() == 0 {
            continue;
        }
        let mut parts = Vec::new();
        if s.added > 0 {
            parts.push(format!(
                "{} added ({})",
                s.added,
                crate::text::size(bytes.added)
            ));
        }
        if s.modified > 0 {
            parts.push(format!(
                "{} changed ({} → {})",
                s.modified,
                crate::text::size(bytes.changed_before),
                crate::text::size(bytes.changed_after)
            ));
        }
        if s.deleted > 0 {
            parts.push(format!(
                "{} deleted ({})",
                s.deleted,
                crate::text::size(bytes.deleted)
            ));
        }
        let _ = writeln!(out, "- {object}: {}", parts.join(", "));
    }
    out
}

/// What a committed summary says in figures: each changed object's added, modified and
/// deleted records, and the alerts that fired. Read back from [`render`]'s text (the state
/// branch keeps no other record of a run's changes); lines it does not know are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub changes: Vec<(String, u64, u64, u64)>,
    pub alerts: Vec<String>,
}

pub fn figures(markdown: &str) -> Figures {
    let mut figures = Figures::default();
    let mut section = "";
    for line in markdown.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = if heading == "Alerts" {
                "alerts"
            } else {
                "other"
            };
            continue;
        }
        if section == "alerts"
            && let Some(alert) = line.strip_prefix("- **").and_then(|l| l.strip_suffix("**"))
        {
            figures.alerts.push(alert.to_string());
            continue;
        }
        let cells: Vec<&str> = line
            .strip_prefix('|')
            .and_then(|l| l.strip_suffix('|'))
            .map(|l| l.split('|').map(str::trim).collect())
            .unwrap_or_default();
        if let [object, added, modified, deleted, ..] = cells.as_slice()
            && let (Ok(a), Ok(m), Ok(d)) = (added.parse(), modified.parse(), deleted.parse())
        {
            figures.changes.push((object.to_string(), a, m, d));
        }
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::model::default_alerts;

    #[test]
    fn a_rendered_summary_reads_back_as_its_figures() {
        let stats: BTreeMap<String, ObjectStats> = [
            (
                "Account".to_string(),
                ObjectStats {
                    before: 100,
                    added: 2,
                    modified: 3,
                    ..ObjectStats::default()
                },
            ),
            stats("Contact", 1440, 20),
            stats("Lead", 10, 0),
        ]
        .into();
        let alerts = vec![Triggered {
            object: "Contact".into(),
            message: "Contact: 20 of 1440 deleted | more than 1%".into(),
        }];
        let text = render(&Summary {
            title: "Acme",
            snapshot: "0123456789abcdef",
            time: "2026-12-01T03:00:00.000Z",
            previous: Some("fedcba9876543210"),
            stats: &stats,
            schema_diff: "",
            alerts: &alerts,
            ids: None,
            components: &[],
        });
        assert_eq!(
            figures(&text),
            Figures {
                changes: vec![("Account".into(), 2, 3, 0), ("Contact".into(), 0, 0, 20)],
                alerts: vec!["Contact: 20 of 1440 deleted | more than 1%".into()],
            }
        );
    }

    fn rule(yaml: &str) -> Alert {
        serde_yaml::from_str(yaml).expect("an alert")
    }

    fn stats(object: &str, before: u64, deleted: u64) -> (String, ObjectStats) {
        (
            object.to_string(),
            ObjectStats {
                before,
                deleted,
                ..ObjectStats::default()
            },
        )
    }

    #[test]
    fn metadata_rules_count_the_components_their_glob_matches() {
        let changes: Vec<ComponentChange> = vec![
            (
                "Profile:Admin".into(),
                Kind::Modified,
                vec!["profiles/Admin.profile".into()],
            ),
            ("Profile:Standard".into(), Kind::Added, Vec::new()),
            ("ApexClass:Invoice".into(), Kind::Deleted, Vec::new()),
            ("ApexClass:Quote".into(), Kind::Modified, Vec::new()),
        ];
        let rules = vec![
            rule("metadata: 'Profile:*'\ncomponentsChanged: 0\ncomponentsAdded: 1"),
            rule("metadata: 'ApexClass:*'\ncomponentsDeleted: 0"),
            rule("metadata: 'Flow:*'\ncomponentsDeleted: 0"),
        ];
        let fired: Vec<String> = alerts(&rules, &BTreeMap::new(), &changes)
            .into_iter()
            .map(|t| t.message)
            .collect();
        assert_eq!(
            fired,
            [
                "metadata Profile:*: 1 changed (more than 0): Profile:Admin",
                "metadata ApexClass:*: 1 deleted (more than 0): ApexClass:Invoice",
            ]
        );
    }

    #[test]
    fn record_rules_leave_the_metadata_object_alone_unless_they_name_it() {
        // One of ten components deleted is 10%: more than the default 5% for records.
        let stats: BTreeMap<String, ObjectStats> =
            [stats("Metadata", 10, 1), stats("Account", 100, 6)].into();
        let fired: Vec<String> = alerts(&default_alerts(), &stats, &[])
            .into_iter()
            .map(|t| t.object)
            .collect();
        assert_eq!(fired, ["Account"]);
        let named = vec![rule("object: Metadata\ndeletedPercent: 5")];
        let fired = alerts(&named, &stats, &[]);
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].object, "Metadata");
    }
}
