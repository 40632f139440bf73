//! A fluent builder for running the real `cairn` binary in a scratch config repository:
//! `Test::new().file("tasks/a.yaml", text).args(["validate"]).run().status(1)`.

#![allow(dead_code)]

pub mod deployment;
pub mod org;
pub mod s3;

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// What a run printed and how it exited.
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Test {
    pub fn new() -> Self {
        Test {
            dir: tempfile::tempdir().expect("a temporary directory"),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// A scratch repository holding a copy of `dir`.
    pub fn from_dir(dir: &Path) -> Self {
        let test = Test::new();
        copy_dir(dir, test.path());
        test
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(self, rel: &str, contents: impl AsRef<[u8]>) -> Self {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directory");
        }
        std::fs::write(&path, contents).expect("write test file");
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs with the scratch repository as the working directory.
    pub fn run(&self) -> Ran {
        self.run_with(&self.args)
    }

    /// Runs with these arguments instead of the builder's, so one scratch repository can serve
    /// several runs.
    pub fn run_with<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Ran {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
        command
            .args(args)
            .current_dir(self.path())
            .env_remove("NO_COLOR")
            .env_remove("CAIRN_KEY")
            // These tests keep stores inside scratch work trees; a CI runner's own variables must not
            // make cairn refuse them as stores inside a checkout.
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .env_remove("CAIRN_PASSPHRASE")
            .env_remove("CAIRN_NEW_PASSPHRASE")
            .env("CLICOLOR", "0");
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let output = command.output().expect("run the cairn binary");
        Ran {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code().unwrap_or(-1),
        }
    }
}

impl Ran {
    pub fn status(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn stdout_has(self, text: &str) -> Self {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}:\n{}",
            self.stdout
        );
        self
    }

    pub fn stderr_has(self, text: &str) -> Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}:\n{}",
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs git in `dir` as an admin would (an identity for commits); it must succeed. Returns
/// what it printed.
/// The commands `cairn --help` lists, in its order (`help` included).
pub fn help_commands() -> Vec<String> {
    let ran = Test::new().run_with(&["--help"]).status(0);
    ran.stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A description that wraps goes on under its own column, not at a command's indent.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Admin")
        .env("GIT_AUTHOR_EMAIL", "admin@example.com")
        .env("GIT_COMMITTER_NAME", "Admin")
        .env("GIT_COMMITTER_EMAIL", "admin@example.com")
        .output()
        .expect("git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create directory");
    for entry in std::fs::read_dir(from).expect("read directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
