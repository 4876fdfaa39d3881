//! The HTTP serve loop: accepts connections up to `http.max_connections`, serves each with
//! hyper's HTTP/1 connection (axum's router as the service) under the configured header and
//! idle timeouts, and shuts down within a bounded time.
//!
//! Why by hand instead of `axum::serve`: axum's loop has no connection cap, sets no timer (so
//! hyper's header read timeout never runs) and waits for every connection on shutdown, so idle
//! sockets could pile up until the process ran out of descriptors — and LDAP, sharing the
//! process, stopped accepting. Every bound here is a library's: hyper's `header_read_timeout`
//! (which in hyper 1.12 also runs while a keep-alive connection waits for its next request),
//! tokio-io-timeout for reads and writes that make no progress, a tokio semaphore for the cap
//! and hyper-util's `GracefulShutdown` for the drain.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt as _;

use super::{router, Shared};

/// How long open requests may take to finish once shutdown begins; connections still open
/// after that (a client stuck half-way through its request, say) are closed.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The largest request head hyper buffers for one connection (phones and PBXs send a few
/// hundred bytes); a bigger head is answered 431. Bounds memory per connection at the cap.
const MAX_HEAD_BUFFER: usize = 64 * 1024;

/// What a connection over the cap is told, if its socket takes it at once (never waited for).
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// Serves until `shutdown` turns true; open requests then get [`SHUTDOWN_GRACE`] to finish.
///
/// The limits are read from the configuration at start; a reload does not change them.
pub async fn serve(listener: TcpListener, state: Shared, mut shutdown: watch::Receiver<bool>) {
    let limits = state.runner().config().http.limits.clone();
    let app = router(state);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // While a handler runs (a sync can take a while) hyper would otherwise keep reading
        // the socket to notice a hang-up, and the idle read timeout would end the request.
        .half_close(true)
        .max_buf_size(MAX_HEAD_BUFFER);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Arc::new(crate::per_client::PerClient::default());
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut refused = crate::per_client::Throttled::default();
    let mut failed = crate::per_client::Throttled::default();
    let mut stop = std::pin::pin!(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    });
    loop {
        tokio::select! {
            () = &mut stop => break,
            // Reaps finished connection tasks so the set holds only open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, typically: back off briefly instead of spinning.
                        failed.warn(|n| tracing::warn!(error = %e, failures = n, "http: accept failed"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    // Over the cap: closed at once, never queued, so the backlog never fills
                    // with sockets nobody will serve.
                    let _ = stream.try_write(BUSY);
                    drop(stream);
                    let cap = limits.max_connections;
                    refused.warn(|n| tracing::warn!(
                        client = %peer, refused = n, max_connections = cap,
                        "http: connection cap reached, refusing connections"
                    ));
                    continue;
                };
                let Some(client_slot) = clients.enter(peer.ip(), limits.max_connections_per_client) else {
                    let _ = stream.try_write(BUSY);
                    drop(stream);
                    let cap = limits.max_connections_per_client;
                    refused.warn(|n| tracing::warn!(
                        client = %peer, refused = n, max_connections_per_client = cap,
                        "http: a client holds too many connections, refusing more from it"
                    ));
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let mut io = TimeoutStream::new(stream);
                io.set_read_timeout(Some(limits.idle_timeout));
                io.set_write_timeout(Some(limits.idle_timeout));
                let app = app.clone();
                let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    app.clone().oneshot(request)
                });
                let connection = graceful.watch(
                    builder.serve_connection(TokioIo::new(Box::pin(io)), service),
                );
                connections.spawn(async move {
                    // Timeouts, resets and clients that hang up mid-request end up here.
                    if let Err(e) = connection.await {
                        tracing::debug!(client = %peer, error = %e, "http: connection closed");
                    }
                    drop(client_slot);
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "http: connections still open {SHUTDOWN_GRACE:?} after shutdown began; closing them"
        );
    }
    connections.shutdown().await;
}
