//! The HTTP/1.1 server under [`super::run`]: an accept loop over hyper's connection builder, because
//! `axum::serve` has no header read timeout, no idle timeout, no cap on connections and no shutdown
//! deadline, so that one slow client could hold a connection, a file descriptor and the shutdown
//! forever. The limits are [`ApiConfig`]'s.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::ApiConfig;

/// How long the accept loop pauses after an error that is not one connection's (out of file
/// descriptors, out of memory): retrying at once would spin on the same error.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets the requests
/// in flight finish for up to `config.shutdown_deadline`, closes the connections still open and
/// returns.
///
/// At most `config.max_connections` connections are open at once. When they are, the loop stops
/// accepting: new connections wait, complete, in the kernel's listen backlog and are served in
/// arrival order as slots free. Refusing them instead would fail real clients under a slow-client
/// flood as often as the flood's own reconnections, and a slot frees within the header read or
/// idle timeout at the latest.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    config: &ApiConfig,
    shutdown: impl Future<Output = ()>,
) {
    let timeouts = Timeouts {
        header_read: config.header_read_timeout,
        keep_alive: config.keep_alive_timeout,
    };
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // Finished connections are reaped here, so that the set holds only the open ones.
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) if one_connections_error(&e) => continue,
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        open = connections.len(),
                        "cannot accept connections; retrying in 1 s (raise the file descriptor \
                         limit or lower the connection cap)"
                    );
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            },
        };
        connections.spawn(connection(
            stream,
            router.clone(),
            timeouts,
            closing_rx.clone(),
            slot,
        ));
    }
    // Closing the listener refuses the connections still in its backlog.
    drop(listener);
    let open = connections.len();
    // Every connection finishes its request in flight and closes; idle ones close at once.
    let _ = closing_tx.send(true);
    let drained = tokio::time::timeout(config.shutdown_deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open_at_shutdown = open,
            still_open = connections.len(),
            deadline = ?config.shutdown_deadline,
            "the shutdown deadline passed: closing the connections still open"
        );
        connections.shutdown().await;
    }
}

/// Accept errors that concern one connection only (it was reset or aborted before it was
/// accepted): the next accept is unaffected.
fn one_connections_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

#[derive(Clone, Copy, Debug)]
struct Timeouts {
    header_read: Duration,
    keep_alive: Duration,
}

/// Serves one connection until it closes, holding its slot.
///
/// hyper closes the connection when a request's header does not arrive within the header read
/// timeout; hyper starts that timer as soon as it waits for a header, on a new connection and on a
/// kept-alive one alike. The keep-alive timeout is kept here: the requests in flight are counted
/// by the service, and once none has been for `keep_alive`, the connection is asked to close,
/// which hyper does at once when it is between requests and after the response otherwise.
async fn connection(
    stream: TcpStream,
    router: Router,
    timeouts: Timeouts,
    mut closing: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let (in_flight_tx, mut in_flight) = watch::channel(0usize);
    let in_flight_tx = Arc::new(in_flight_tx);
    let router = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |request| {
        let guard = InFlight::enter(Arc::clone(&in_flight_tx));
        let response = router.call(request);
        async move {
            let response: Result<_, Infallible> = response.await;
            drop(guard);
            response
        }
    });
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read);
    let mut conn = pin!(http.serve_connection(TokioIo::new(stream), service));
    let mut idle = pin!(tokio::time::sleep(timeouts.keep_alive));
    let mut idle_armed = false;
    let mut closing_sent = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    // Timeouts, resets and malformed requests: the client's doing, not an
                    // operator's concern.
                    tracing::debug!(error = %e, "connection closed with an error");
                }
                break;
            }
            Ok(()) = in_flight.changed() => {
                idle_armed = *in_flight.borrow_and_update() == 0;
                if idle_armed {
                    idle.as_mut().reset(Instant::now() + timeouts.keep_alive);
                }
            }
            () = &mut idle, if idle_armed => {
                idle_armed = false;
                conn.as_mut().graceful_shutdown();
            }
            Ok(()) = closing.changed(), if !closing_sent => {
                closing_sent = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// One request in flight on a connection, counted until its response is ready.
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn enter(count: Arc<watch::Sender<usize>>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}
