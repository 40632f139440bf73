//! `cairn demo` end to end: every stage runs and says what it did.

use std::process::Command;

#[test]
fn the_demo_runs_the_whole_loop() {
    let keep = tempfile::tempdir().expect("dir");
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["demo", "--records", "2000", "--keep"])
        .arg(keep.path())
        .env_remove("CAIRN_PASSPHRASE")
        .env_remove("CAIRN_KEY")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI")
        .output()
        .expect("cairn demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stage = |n: u32| {
        let start = stdout
            .find(&format!("== {n}."))
            .unwrap_or_else(|| panic!("stage {n}: {stdout}"));
        let end = stdout[start + 4..]
            .find("\n== ")
            .map_or(stdout.len(), |e| start + 4 + e);
        stdout[start..end].to_string()
    };
    assert!(stage(1).contains("2000 records, listening at http://127.0.0.1:"));
    assert!(stage(2).contains("Created the encrypted store"));
    assert!(
        stage(3).contains("success  acme-production")
            && stage(3).contains("16 full, 0 incremental")
    );
    assert!(stage(4).contains("contacts deleted"));
    assert!(
        stage(5).contains("0 full, 16 incremental") && stage(5).contains("ALERT  Contact:"),
        "{}",
        stage(5)
    );
    assert!(
        stage(6).contains("\n   M ") && stage(6).contains("\n   - "),
        "{}",
        stage(6)
    );
    assert!(
        stage(6).contains("M ApexClass:AccountService  classes/AccountService.cls")
            && stage(6).contains("+    // Discounts above 20% need a manager's approval."),
        "{}",
        stage(6)
    );
    assert!(stage(7).contains("[deleted "), "{}", stage(7));
    assert!(
        stage(8).contains("^ undelete Contact")
            && stage(8)
                .contains("Restored: 1 undeleted (original Ids), 0 created, 0 updated, 0 failed."),
        "{}",
        stage(8)
    );
    assert!(stage(9).contains("log --stat cairn-state"));
    assert!(stdout.trim_end().ends_with("Demo complete."));
    // What it kept is a real config repository with its state branch.
    let log = Command::new("git")
        .arg("-C")
        .arg(keep.path().join("config"))
        .args(["log", "--oneline", "cairn-state"])
        .output()
        .expect("git");
    assert_eq!(String::from_utf8_lossy(&log.stdout).lines().count(), 2);
}
