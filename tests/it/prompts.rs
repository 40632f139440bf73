//! What cairn asks at a terminal, run under a pseudo-terminal (`script`) with the answers
//! typed in: passphrases the environment does not give (twice for a new key file), and a yes
//! before a deletion. Without a terminal nothing is asked (the other tests run so).

use crate::common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Test, git};

const REPOSITORY: &str =
    "apiVersion: cairn/v1\nkind: Repository\nstore:\n  local:\n    path: .cairn/store\n";

/// Runs `cairn ARGS` in `dir` under a pseudo-terminal, typing `input`; what the terminal
/// showed, and the exit code.
fn at_terminal(dir: &Path, args: &str, input: &str) -> (String, i32) {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_cairn"));
    let mut child = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .current_dir(dir)
        .env_remove("CAIRN_PASSPHRASE")
        .env_remove("CAIRN_KEY")
        .env_remove("CAIRN_NEW_PASSPHRASE")
        .env_remove("CI")
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("typed");
    let output = child.wait_with_output().expect("script");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        output.status.code().unwrap_or(-1),
    )
}

fn repository() -> Test {
    let test = Test::new().file("cairn.yaml", REPOSITORY);
    git(test.path(), &["init", "--quiet", "-b", "main"]);
    test
}

#[test]
fn init_asks_the_new_passphrase_twice_and_the_store_opens_with_it() {
    let test = repository();
    let (shown, code) = at_terminal(test.path(), "init", "secret horse\nsecret horse\n");
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("New passphrase for the store's first key file: ")
            && shown.contains("The same passphrase again: "),
        "{shown}"
    );
    // The passphrase typed is the one that opens the store.
    let listed = Test::from_dir(test.path())
        .env("CAIRN_PASSPHRASE", "secret horse")
        .args(["key", "list"])
        .run()
        .status(0);
    assert!(listed.stdout.contains("in use"), "{}", listed.stdout);
    // And, asked at the terminal, it opens it too.
    let (shown, code) = at_terminal(test.path(), "key list", "secret horse\n");
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("Passphrase for the store at "), "{shown}");
}

#[test]
fn two_passphrases_that_differ_write_nothing() {
    let test = Test::new();
    let (shown, code) = at_terminal(test.path(), "init --store local:store", "one\ntwo\n");
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains("the two passphrases differ; nothing was written"),
        "{shown}"
    );
    assert!(
        !test.path().join("cairn.yaml").exists() && !test.path().join("store").exists(),
        "init wrote files before it had a passphrase"
    );
}

#[test]
fn a_deletion_at_a_terminal_shows_what_it_will_do_and_waits_for_yes() {
    let test = repository()
        .env("CAIRN_PASSPHRASE", "pw")
        .env("CAIRN_NEW_PASSPHRASE", "second");
    test.run_with(&["init"]).status(0);
    let keys = || {
        std::fs::read_dir(test.path().join(".cairn/store/keys"))
            .expect("keys")
            .count()
    };
    let added = test
        .run_with(&["key", "add", "--label", "second", "--format", "json"])
        .status(0);
    let added: serde_json::Value = serde_json::from_str(&added.stdout).expect("JSON");
    let second = added["id"].as_str().expect("the new key's id").to_string();
    assert_eq!(keys(), 2);

    // The removal is asked first; the passphrase (none in the environment) only if it goes on.
    let remove = format!("key remove {second}");
    let (shown, code) = at_terminal(test.path(), &remove, "n\n");
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains(&format!("Key file {second} will be removed"))
            && shown.contains("Go ahead? [y/N]")
            && shown.contains("not confirmed: nothing was changed"),
        "{shown}"
    );
    assert_eq!(keys(), 2, "declined, yet removed");
    let (shown, code) = at_terminal(test.path(), &remove, "y\npw\n");
    assert_eq!(code, 0, "{shown}");
    assert_eq!(keys(), 1);

    // prune shows its dry run before it asks (the passphrase asked once for both); --yes
    // asks nothing.
    let (shown, code) = at_terminal(test.path(), "prune", "pw\nn\n");
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains("would") && shown.contains("Go ahead? [y/N]"),
        "{shown}"
    );
    let (shown, code) = at_terminal(test.path(), "prune", "pw\ny\n");
    assert_eq!(code, 0, "{shown}");
    assert_eq!(
        shown.matches("Passphrase for the store").count(),
        1,
        "{shown}"
    );
    let (shown, code) = at_terminal(test.path(), "prune --yes", "pw\n");
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains("Go ahead?"), "{shown}");
}

#[test]
fn colour_follows_the_terminal_no_color_and_the_color_flag() {
    let test = Test::new();
    let red_error = "\u{1b}[1m\u{1b}[31merror:\u{1b}[0m";
    // On a terminal: painted, unless NO_COLOR is set or --color never.
    let (shown, code) = at_terminal(test.path(), "diff", "");
    assert_eq!(code, 1);
    assert!(shown.contains(red_error), "{shown:?}");
    let (shown, _) = at_terminal(test.path(), "diff --color never", "");
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    let command = format!("{} diff", env!("CARGO_BIN_EXE_cairn"));
    let no_color = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .current_dir(test.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("script");
    assert!(!String::from_utf8_lossy(&no_color.stdout).contains('\u{1b}'));
    // Piped: plain, unless --color always.
    let piped = test.run_with(&["diff"]).status(1);
    assert!(piped.stderr.starts_with("error:"), "{:?}", piped.stderr);
    let forced = test.run_with(&["diff", "--color", "always"]).status(1);
    assert!(forced.stderr.starts_with(red_error), "{:?}", forced.stderr);
}
