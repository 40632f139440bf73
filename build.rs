//! Build facts `cairn version` reports: the commit built (when built from a git checkout) and
//! the target. Nothing here runs when those facts are not at hand; the build never fails for
//! them.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let date = git(&["log", "-1", "--format=%cs"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CAIRN_COMMIT={commit}");
    println!("cargo:rustc-env=CAIRN_COMMIT_DATE={date}");
    println!(
        "cargo:rustc-env=CAIRN_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    println!(
        "cargo:rustc-env=CAIRN_PROFILE={}",
        std::env::var("PROFILE").unwrap_or_default()
    );
    // A new commit or checkout changes HEAD or the ref it names.
    if std::path::Path::new(".git/HEAD").exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
    }
    if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
        let path = format!(".git/{head}");
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
