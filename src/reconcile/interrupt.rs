//! A request to stop (Ctrl-C, SIGTERM), shared between the signal handler and the run.

/// A request to stop, shared between the signal handler and the run.
#[derive(Clone, Default)]
pub struct Interrupt(std::sync::Arc<(std::sync::atomic::AtomicBool, tokio::sync::Notify)>);

impl Interrupt {
    pub fn trigger(&self) {
        self.0.0.store(true, std::sync::atomic::Ordering::SeqCst);
        self.0.1.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.0.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Resolves once the run is asked to stop.
    pub async fn wait(&self) {
        loop {
            let notified = self.0.1.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Interrupt({})", self.is_set())
    }
}
