//! `cairn version`: what was built, from which commit, for which machine; what a bug report
//! needs.

use serde::Serialize;

use super::Report;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionOutcome {
    pub version: &'static str,
    /// The commit built (12 hex digits), or "unknown" outside a git checkout.
    pub commit: &'static str,
    /// The commit's date.
    pub commit_date: &'static str,
    pub target: &'static str,
    /// release or debug.
    pub profile: &'static str,
    pub libgit2: String,
}

pub fn version() -> VersionOutcome {
    let (major, minor, patch) = git2::Version::get().libgit2_version();
    VersionOutcome {
        version: env!("CARGO_PKG_VERSION"),
        commit: env!("CAIRN_COMMIT"),
        commit_date: env!("CAIRN_COMMIT_DATE"),
        target: env!("CAIRN_TARGET"),
        profile: env!("CAIRN_PROFILE"),
        libgit2: format!("{major}.{minor}.{patch}"),
    }
}

impl Report for VersionOutcome {
    fn text(&self) -> String {
        format!(
            "cairn {} ({} {})\ntarget   {} ({})\nlibgit2  {}\n",
            self.version, self.commit, self.commit_date, self.target, self.profile, self.libgit2
        )
    }
}
