//! `cairn demo`: the whole loop on one machine with no account. The built-in simulator stands
//! in for a Salesforce org; a config repository and an encrypted store are made in a
//! temporary directory (or `--keep DIR`); then apply, realistic edits and deletes in the org,
//! apply again, the diff, a search, a restore plan and its application, and where to look.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::Report as _;
use super::diff::{DiffFormat, DiffOptions, diff};
use super::init::{InitOptions, init};
use super::restore::{RestoreOptions, restore};
use super::search::{SearchOptions, search};
use crate::error::Error;
use crate::reconcile::{ApplyOptions, apply};
use crate::store::keys::KdfParams;
use cairn_sim::org::{OrgOptions, Population};
use cairn_sim::server::{SimOptions, Simulator};

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub records: usize,
    /// Keep the config repository and store here (must not exist yet, or be empty).
    pub keep: Option<PathBuf>,
    /// Told of the backups' progress.
    pub progress: crate::progress::Reporter,
}

const PASSPHRASE: &str = "demo passphrase: not for real data";

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<(), Error> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "cairn demo")
        .env("GIT_AUTHOR_EMAIL", "demo@cairn.invalid")
        .env("GIT_COMMITTER_NAME", "cairn demo")
        .env("GIT_COMMITTER_EMAIL", "demo@cairn.invalid")
        .output()
        .map_err(|e| Error::Git {
            path: dir.to_path_buf(),
            message: format!("cannot run git ({e}); the demo needs git installed"),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Git {
            path: dir.to_path_buf(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

fn stage(out: &mut dyn std::io::Write, number: u32, title: &str) {
    let _ = writeln!(out, "\n== {number}. {title}");
}

fn indent(text: &str, lines: usize) -> String {
    let mut shown: Vec<&str> = text.lines().take(lines).collect();
    let more = text.lines().count().saturating_sub(lines);
    let mut out = String::new();
    for line in shown.drain(..) {
        let _ = writeln!(out, "   {line}");
    }
    if more > 0 {
        let _ = writeln!(out, "   … {more} more lines");
    }
    out
}

async fn admin(
    http: &reqwest::Client,
    sim: &Simulator,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Result<Value, Error> {
    let response = http
        .request(method, format!("{}/__sim/{path}", sim.url()))
        .json(&body)
        .send()
        .await
        .map_err(|e| Error::Usage {
            message: format!("the simulator did not answer: {e}"),
            next: "run the demo again".into(),
        })?;
    Ok(response.json().await.unwrap_or(Value::Null))
}

async fn soql(http: &reqwest::Client, sim: &Simulator, query: &str) -> Result<Vec<Value>, Error> {
    let page: Value = http
        .get(format!("{}/services/data/v62.0/query", sim.url()))
        .query(&[("q", query)])
        .bearer_auth(&sim.credentials.access_token)
        .send()
        .await
        .map_err(|e| Error::Usage {
            message: format!("the simulator did not answer: {e}"),
            next: "run the demo again".into(),
        })?
        .json()
        .await
        .unwrap_or(Value::Null);
    Ok(page["records"].as_array().cloned().unwrap_or_default())
}

/// Runs the demo, writing its story to `out`.
pub async fn demo(
    options: &DemoOptions,
    out: &mut (dyn std::io::Write + Send),
) -> Result<(), Error> {
    let temporary;
    let root = match &options.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            if std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
                return Err(Error::Usage {
                    message: format!("{} is not empty", dir.display()),
                    next: "give --keep a new or empty directory".into(),
                });
            }
            dir.clone()
        }
        None => {
            temporary = tempfile::Builder::new()
                .prefix("cairn-demo-")
                .tempdir()
                .map_err(io(Path::new("temporary directory")))?;
            temporary.path().to_path_buf()
        }
    };
    let config = root.join("config");
    std::fs::create_dir_all(config.join("tasks")).map_err(io(&config))?;

    stage(out, 1, "A simulated Salesforce org");
    let sim = Simulator::start(
        SimOptions {
            org: OrgOptions {
                seed: 7,
                population: Population::spread(options.records),
                ..OrgOptions::default()
            },
            ..SimOptions::default()
        },
        0,
    )
    .await
    .map_err(io(Path::new("simulator")))?;
    let _ = writeln!(
        out,
        "   {} records, listening at {}",
        options.records,
        sim.url()
    );
    let env_values = [
        ("CAIRN_PASSPHRASE", PASSPHRASE.to_string()),
        ("SF_CLIENT_ID", sim.credentials.client_id.clone()),
        ("SF_REFRESH_TOKEN", sim.credentials.refresh_token.clone()),
    ];
    let env = move |name: &str| {
        env_values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };

    stage(out, 2, "A config repository, its encrypted store and key");
    std::fs::write(
        config.join("cairn.yaml"),
        "apiVersion: cairn/v1\nkind: Repository\nstore:\n  local:\n    path: .cairn/store\n",
    )
    .map_err(io(&config))?;
    std::fs::write(
        config.join("tasks/acme-production.yaml"),
        format!(
            "apiVersion: cairn/v1\nkind: BackupTask\nid: acme-production\nname: Acme Production\nschedule: \"0 3 * * *\"\nsource:\n  type: salesforce\n  environment: production\n  loginUrl: {}\n  auth:\n    refreshToken:\n      clientIdEnv: SF_CLIENT_ID\n      refreshTokenEnv: SF_REFRESH_TOKEN\nretention:\n  keepLast: 30\n",
            sim.url()
        ),
    )
    .map_err(io(&config))?;
    git(&config, &["init", "--quiet", "-b", "main"])?;
    let created = init(
        &InitOptions {
            store: None,
            dir: config.clone(),
            label: "demo".into(),
            kdf: KdfParams::default(),
        },
        &env,
    )?;
    out.write_all(indent(&created.text(), 10).as_bytes())
        .map_err(io(Path::new("stdout")))?;
    git(&config, &["add", "-A"])?;
    git(
        &config,
        &["commit", "--quiet", "-m", "Back up Acme Production"],
    )?;
    let _ = writeln!(out, "   {}", config.display());

    let apply_options = ApplyOptions {
        dir: config.clone(),
        tasks: Vec::new(),
        force: true,
        dry_run: false,
        allow_dirty: false,
        at: None,
        fail_on_alert: false,
        wait: std::time::Duration::ZERO,
        interrupt: Default::default(),
        progress: options.progress.clone(),
    };
    stage(out, 3, "cairn apply: the first, full backup");
    let first = apply(&apply_options, &env).await?;
    out.write_all(indent(&first.render(), 8).as_bytes())
        .map_err(io(Path::new("stdout")))?;

    stage(
        out,
        4,
        "Users at work: edits, deletes, a new lead; an admin edits Apex",
    );
    let http = reqwest::Client::new();
    let accounts = soql(&http, &sim, "SELECT Id FROM Account").await?;
    let edited = (accounts.len() / 100).max(3);
    for account in accounts.iter().take(edited) {
        if let Some(id) = account["Id"].as_str() {
            admin(
                &http,
                &sim,
                reqwest::Method::PATCH,
                &format!("records/Account/{id}"),
                json!({"Phone": "+1 555 0100"}),
            )
            .await?;
        }
    }
    let contacts = soql(&http, &sim, "SELECT Id, LastName FROM Contact").await?;
    let state = admin(&http, &sim, reqwest::Method::GET, "state", json!({})).await?;
    // 8% of the contacts: more than the default alert's 5%.
    let all_contacts = state["records"]["Contact"]
        .as_u64()
        .unwrap_or(contacts.len() as u64) as usize;
    let deleted: Vec<(String, String)> = contacts
        .iter()
        .take((all_contacts * 8 / 100).max(2))
        .filter_map(|c| {
            Some((
                c["Id"].as_str()?.to_string(),
                c["LastName"].as_str()?.to_string(),
            ))
        })
        .collect();
    for (id, _) in &deleted {
        admin(
            &http,
            &sim,
            reqwest::Method::DELETE,
            &format!("records/Contact/{id}"),
            json!({}),
        )
        .await?;
    }
    admin(
        &http,
        &sim,
        reqwest::Method::POST,
        "records/Lead",
        json!({"LastName": "Okafor", "Company": "Brightwater", "Status": "Open - Not Contacted"}),
    )
    .await?;
    // An admin's change to the org's configuration, which the metadata backup keeps.
    let class = "AccountService";
    let source = sim
        .state
        .metadata
        .read()
        .ok()
        .and_then(|components| {
            components
                .iter()
                .find(|c| c.kind == "ApexClass" && c.full_name == class)
                .map(|c| c.source.clone())
        })
        .unwrap_or_default();
    let edited_source = source.replacen(
        '{',
        "{\n    // Discounts above 20% need a manager's approval.",
        1,
    );
    admin(
        &http,
        &sim,
        reqwest::Method::PUT,
        &format!("metadata/ApexClass/{class}"),
        json!({ "source": edited_source }),
    )
    .await?;
    let _ = writeln!(
        out,
        "   {edited} accounts' phone numbers changed, {} contacts deleted, 1 lead created, Apex class {class} edited",
        deleted.len()
    );

    stage(
        out,
        5,
        "cairn apply again: an incremental backup, and a data-loss alert",
    );
    let second = apply(&apply_options, &env).await?;
    out.write_all(indent(&second.render(), 8).as_bytes())
        .map_err(io(Path::new("stdout")))?;

    stage(out, 6, "cairn diff: what changed between the two backups");
    let changes = diff(
        &DiffOptions {
            dir: config.clone(),
            task: None,
            from: None,
            to: None,
            object: None,
            values: false,
            format: DiffFormat::Text,
        },
        &env,
    )?;
    out.write_all(indent(&changes, 14).as_bytes())
        .map_err(io(Path::new("stdout")))?;
    let _ = writeln!(out, "   cairn diff --object Metadata --values:");
    let metadata = diff(
        &DiffOptions {
            dir: config.clone(),
            task: None,
            from: None,
            to: None,
            object: Some(crate::source::METADATA_OBJECT.to_string()),
            values: true,
            format: DiffFormat::Text,
        },
        &env,
    )?;
    // The header and the class's changed lines; its dates follow.
    let shown: String = metadata
        .lines()
        .filter(|line| !line.trim_start().starts_with("lastModified"))
        .map(|line| format!("{line}\n"))
        .collect();
    out.write_all(indent(&shown, 12).as_bytes())
        .map_err(io(Path::new("stdout")))?;

    let (first_deleted, name) = deleted.first().cloned().unwrap_or_default();
    stage(
        out,
        7,
        &format!("cairn search \"{name}\": found in the backups, deleted since"),
    );
    let found = search(
        &SearchOptions {
            dir: config.clone(),
            query: name.clone(),
            object: Some("Contact".into()),
            deleted: true,
            limit: 5,
            ..SearchOptions::default()
        },
        &env,
    )?
    .text();
    out.write_all(indent(&found, 6).as_bytes())
        .map_err(io(Path::new("stdout")))?;

    stage(out, 8, "cairn restore: the plan first, then --apply");
    let restore_options = RestoreOptions {
        dir: config.clone(),
        task: "acme-production".into(),
        snapshot: Some("latest~1".into()),
        ids: vec![first_deleted.clone()],
        ..RestoreOptions::default()
    };
    let plan = restore(&restore_options, &env).await?;
    out.write_all(indent(&plan.text(), 8).as_bytes())
        .map_err(io(Path::new("stdout")))?;
    let applied = restore(
        &RestoreOptions {
            apply: true,
            ..restore_options
        },
        &env,
    )
    .await?;
    let applied = applied.text();
    let result: Vec<&str> = applied
        .lines()
        .filter(|l| {
            ["undeleted", "created", "updated", "FAILED", "Restored"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    let _ = writeln!(out, "   --apply:");
    out.write_all(indent(&result.join("\n"), 8).as_bytes())
        .map_err(io(Path::new("stdout")))?;

    stage(out, 9, "Where to look");
    let shown = config.display();
    let _ = writeln!(
        out,
        "   git -C {shown} log --stat cairn-state      the state branch: one commit per apply"
    );
    let _ = writeln!(
        out,
        "   git -C {shown} show cairn-state:state/acme-production/status.yaml"
    );
    let _ = writeln!(
        out,
        "   {shown}/.cairn/store                        the encrypted store (keys/, data/, snapshots/)"
    );
    if options.keep.is_none() {
        let _ = writeln!(
            out,
            "   (all of it is removed now; run `cairn demo --keep DIR` to keep it)"
        );
    } else {
        let _ = writeln!(
            out,
            "   CAIRN_PASSPHRASE='{PASSPHRASE}' cargo run -- status {shown}"
        );
    }
    let _ = writeln!(out, "\nDemo complete.");
    Ok(())
}
