//! Serving the simulator's router over HTTP/1.1 the way Salesforce's servers write it: header
//! names in canonical Title-Case (`Content-Type`, `Sforce-Limit-Info`). Names are
//! case-insensitive by the RFC, but client code that reads them through a case-sensitive map
//! works against Salesforce and must work here. axum's `serve` does not expose that setting,
//! so connections are served with hyper-util's builder, and drained on shutdown as `serve`
//! does it.

use std::future::Future;

use axum::Router;
use axum::serve::Listener;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

/// Accepts connections until `shutdown` resolves, then lets each finish its request in flight
/// and closes it.
pub(crate) async fn serve<L: Listener>(
    mut listener: L,
    app: Router,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, _) = tokio::select! {
            connection = listener.accept() => connection,
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let builder = Builder::new(TokioExecutor::new()).title_case_headers(true);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    graceful.shutdown().await;
}
