//! The command line documenting itself: shell completions and manual pages, generated from
//! the same clap definitions that parse the arguments.

use std::path::{Path, PathBuf};

use super::args::Cli;
use super::output::print;
use crate::error::Error;
use crate::exit::ExitStatus;

/// The completion script of `shell`.
pub(super) fn completions(shell: clap_complete::Shell) -> String {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "cairn", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The manual page on stdout, or a page per command written into `out`.
pub(super) fn man(out: Option<&Path>) -> Result<ExitStatus, Error> {
    let command = <Cli as clap::CommandFactory>::command();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            clap_mangen::generate_to(command, dir).map_err(io(dir))?;
            print(&format!("wrote the manual pages into {}\n", dir.display()));
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(io(&PathBuf::from("stdout")))?;
            print(&String::from_utf8_lossy(&page));
        }
    }
    Ok(ExitStatus::Success)
}
