//! Ctrl-C and SIGTERM: a command that can stop cleanly is asked to; otherwise, and at a
//! second signal, the store's locks and the search scratch are released and the process ends.

use crate::exit::ExitStatus;
use crate::reconcile::Interrupt;

/// Ctrl-C and SIGTERM (how CI cancels a job) release the store's locks before the process
/// ends, so nothing stays locked. A command that can stop cleanly (`apply`) is asked to,
/// and records the run as interrupted; a second signal ends it at once.
pub(super) fn watch(graceful: Option<Interrupt>) {
    let _ = std::thread::Builder::new()
        .name("cairn-signals".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Some(mut signals) = Signals::watch() else {
                    return;
                };
                let mut first = true;
                while signals.next().await {
                    match (&graceful, first) {
                        (Some(interrupt), true) => {
                            eprintln!(
                                "interrupted: stopping the running backup and recording it as interrupted (press Ctrl-C again to quit at once)"
                            );
                            interrupt.trigger();
                            first = false;
                        }
                        _ => {
                            crate::store::lock::release_all();
                            crate::search::scratch::remove_all();
                            eprintln!("interrupted: the store's locks are released");
                            std::process::exit(i32::from(ExitStatus::Interrupted.code()));
                        }
                    }
                }
            });
        });
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere).
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn watch() -> Option<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Some(Signals {
                interrupt: signal(SignalKind::interrupt()).ok()?,
                terminate: signal(SignalKind::terminate()).ok()?,
            })
        }
        #[cfg(not(unix))]
        Some(Signals {})
    }

    /// The next signal; false when none can come any more.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            tokio::select! {
                got = self.interrupt.recv() => got.is_some(),
                got = self.terminate.recv() => got.is_some(),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}
