//! Validating 1,000 task manifests (issue 2 asks for <= 0.5 s in release mode).
//!
//!     cargo bench --bench validate
//!
//! Writes the repositories to target/bench-validate/{valid,invalid} (kept, so the CLI can be
//! timed on them too: `hyperfine 'target/release/cairn validate target/bench-validate/valid'`)
//! and reports the best, median and worst of several runs of the whole `validate` command:
//! reading, parsing, schema and rule checks, typing, and rendering.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn::commands::validate::{ValidateOptions, validate};
use cairn::manifest::Format;

const TASKS: usize = 1000;
const RUNS: usize = 15;

fn task(i: usize, broken: bool) -> String {
    let environment = if broken {
        "prod"
    } else if i.is_multiple_of(2) {
        "production"
    } else {
        "sandbox"
    };
    let percent = if broken { 150 } else { 50 + i % 40 };
    let schedule = if broken {
        "61 3 * * *".to_string()
    } else {
        format!("{} {} * * *", i % 60, i % 24)
    };
    format!(
        r#"# yaml-language-server: $schema=../../schemas/task.schema.json
apiVersion: cairn/v1
kind: BackupTask
id: org-{i:04}
name: Org number {i}
schedule: "{schedule}"
source:
  type: salesforce
  environment: {environment}
  loginUrl: https://org{i}.my.salesforce.com
  apiVersion: "65.0"
  apiUsageLimitPercent: {percent}
  auth:
    jwt:
      clientIdEnv: SF_CLIENT_ID_{i}
      username: backup{i}@example.com
      privateKeyEnv: SF_PRIVATE_KEY_{i}
objects:
  include: ["*"]
  exclude: ["*History", "*Feed", "*__Share"]
search:
  index: true
retention:
  keepDaily: 30
  keepWeekly: 12
  keepMonthly: 24
  autoArchivedDays: 365
alerts:
  - object: "*"
    deletedPercent: 5
    deletedCount: 200
  - object: Opportunity
    modifiedPercent: 20
notifications:
  - channel:
      slack:
        webhookUrlEnv: SLACK_WEBHOOK
    events: [failure, warning, disconnected]
    template: summary.md.j2
  - channel:
      email:
        to: [admins{i}@example.com]
        from: cairn@example.com
        smtp:
          host: smtp.example.com
          usernameEnv: SMTP_USERNAME
          passwordEnv: SMTP_PASSWORD
    events: [failure]
"#
    )
}

fn write_repo(dir: &Path, broken: bool) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("tasks")).expect("create tasks/");
    std::fs::create_dir_all(dir.join("templates")).expect("create templates/");
    std::fs::write(
        dir.join("cairn.yaml"),
        "apiVersion: cairn/v1\nkind: Repository\nstore:\n  local:\n    path: .cairn/store\n",
    )
    .expect("write cairn.yaml");
    std::fs::write(dir.join("templates/summary.md.j2"), "{{ task.name }}\n").expect("template");
    for i in 0..TASKS {
        std::fs::write(dir.join(format!("tasks/org-{i:04}.yaml")), task(i, broken)).expect("task");
    }
}

fn measure(dir: &Path, format: Format) -> (Vec<Duration>, usize, usize) {
    let options = ValidateOptions {
        dir: dir.to_path_buf(),
        rev: None,
        format,
        color: false,
    };
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let outcome = validate(&options).expect("validate runs");
        times.push(start.elapsed());
        last = Some(outcome);
    }
    times.sort();
    let outcome = last.expect("at least one run");
    (times, outcome.summary.errors, outcome.output.len())
}

fn main() {
    cairn::store::buffers::return_freed_memory_promptly();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-validate");
    for (name, broken) in [("valid", false), ("invalid", true)] {
        let dir = root.join(name);
        write_repo(&dir, broken);
        for format in [Format::Text, Format::Json] {
            let (times, errors, bytes) = measure(&dir, format);
            println!(
                "validate {TASKS} {name} task manifests ({format:?}): best {:.1} ms, median {:.1} ms, worst {:.1} ms ({errors} errors, {bytes} bytes of output, {RUNS} runs)",
                ms(times[0]),
                ms(times[times.len() / 2]),
                ms(times[times.len() - 1]),
            );
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
