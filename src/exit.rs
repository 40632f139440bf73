//! What a run of `cairn` ends with: one meaning per exit code, for scripts and CI.

/// The process's exit status; `code()` is the number scripts see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ExitStatus {
    /// 0: done, nothing failed (or nothing to do).
    Success,
    /// 1: an error, invalid input, a failed task, a refused change, damage found.
    Failure,
    /// 2: `plan` has changes to show.
    Changes,
    /// 3: a task's backup (or a restore) is partial: some of it done, the rest on the next run.
    Partial,
    /// 130: Ctrl-C or SIGTERM stopped the run (as a shell reports SIGINT).
    Interrupted,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Changes => 2,
            ExitStatus::Partial => 3,
            ExitStatus::Interrupted => 130,
        }
    }

    /// Success when `ok`, else Failure.
    pub fn from_ok(ok: bool) -> ExitStatus {
        if ok {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> std::process::ExitCode {
        std::process::ExitCode::from(status.code())
    }
}
