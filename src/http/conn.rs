//! Accepting and serving client connections, with bounds a slow or idle client cannot stretch.
//!
//! - At most `HTTP_MAX_CONNECTIONS` connections are served. A small reserve beyond them
//!   serves only the health probes, one request per connection with a short header
//!   timeout, so a flood of idle sockets cannot make a liveness probe fail; connections
//!   beyond the reserve are closed as soon as they are accepted. The cap is lowered to fit
//!   the process's open-file limit.
//! - A connection that has begun a request (or is new) and has not sent its complete
//!   headers within `HTTP_HEADER_READ_TIMEOUT_MS` is closed; so is one with nothing in flight
//!   for `HTTP_IDLE_TIMEOUT_MS` after its last answer, and one whose client has taken
//!   nothing of its answer (done or still streaming) for as long: the socket would not take
//!   another byte for that long.
//! - At shutdown, connections with no request in flight are closed at once; the others
//!   finish their answer and close. An answer counts as in flight until hyper has written
//!   all of it to the socket (its flush after the last frame), not only until its body has
//!   given its last frame: a large answer still in hyper's buffers is not cut.

use std::{
    convert::Infallible,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::ConnectInfo,
    http::{HeaderValue, Request, Response, StatusCode, header},
};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Connections beyond the cap kept for health probes.
pub const PROBE_RESERVE: usize = 16;
/// Header timeout of the probe reserve: a probe sends its request at once.
const PROBE_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// Open files kept for everything but client connections (database pool, store files,
/// calls to HTTP tools, logs).
const FILES_KEPT_FOR_THE_REST: u64 = 128;

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl ConnectionLimits {
    /// The limits `HTTP_MAX_CONNECTIONS`, `HTTP_HEADER_READ_TIMEOUT_MS` and
    /// `HTTP_IDLE_TIMEOUT_MS` set.
    pub fn of(server: &crate::config::ServerSettings) -> Self {
        Self {
            max_connections: server.max_connections,
            header_read_timeout: server.header_read_timeout(),
            idle_timeout: server.idle_timeout(),
        }
    }

    /// The limits, with the cap lowered (and a warning) when the open-file limit could not
    /// hold that many connections besides the probe reserve and the rest of the process.
    pub fn fitted_to_open_file_limit(mut self) -> Self {
        if let Some(files) = open_file_limit() {
            let room = files
                .saturating_sub(FILES_KEPT_FOR_THE_REST + PROBE_RESERVE as u64)
                .max(1) as usize;
            if self.max_connections > room {
                tracing::warn!(
                    configured = self.max_connections,
                    open_file_limit = files,
                    serving = room,
                    "HTTP_MAX_CONNECTIONS is above what the open-file limit leaves room for; \
                     lowering it (raise `ulimit -n` to serve more)"
                );
                self.max_connections = room;
            }
        }
        self
    }
}

/// The soft limit on open files, where the platform tells it (`/proc/self/limits`).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then stops accepting and
/// returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let regular = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(PROBE_RESERVE));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of files or a connection reset before it was accepted: wait a
                    // moment rather than spin.
                    tracing::debug!(%err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let (permit, probes_only) = match regular.clone().try_acquire_owned() {
            Ok(permit) => (permit, false),
            Err(_) => match reserve.clone().try_acquire_owned() {
                Ok(permit) => (permit, true),
                Err(_) => {
                    metrics::counter!("http_connections_refused_total").increment(1);
                    drop(stream);
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            metrics::gauge!("http_connections_open").increment(1.0);
            serve_connection(stream, peer, app, limits, probes_only, shutdown).await;
            metrics::gauge!("http_connections_open").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    // Every permit back means every connection closed.
    let _ = regular.acquire_many(limits.max_connections as u32).await;
    let _ = reserve.acquire_many(PROBE_RESERVE as u32).await;
}

/// What the watchdog of one connection knows about it. Times are milliseconds since the
/// connection was accepted.
struct Activity {
    accepted: Instant,
    in_flight: AtomicUsize,
    /// Answers whose body is done (or dropped) but maybe not yet written to the socket:
    /// still in flight until the next flush of the socket completes.
    awaiting_flush: AtomicUsize,
    /// When the last answer ended (or the connection was accepted).
    idle_since: AtomicU64,
    /// When bytes of a request not yet begun were first read; `NOTHING_PENDING` if none.
    /// A new connection counts as pending from the start: it owes its first request.
    pending_since: AtomicU64,
    /// Since when the socket has refused every byte of an answer (its send buffer full: the
    /// client takes nothing); `NOTHING_PENDING` while writes go through.
    write_blocked_since: AtomicU64,
}

const NOTHING_PENDING: u64 = u64::MAX;

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            awaiting_flush: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            pending_since: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(NOTHING_PENDING),
        })
    }

    fn now(&self) -> u64 {
        self.accepted.elapsed().as_millis() as u64
    }

    fn read_some(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let now = self.now();
            let _ = self.pending_since.compare_exchange(
                NOTHING_PENDING,
                now,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.pending_since.store(NOTHING_PENDING, Ordering::Release);
        InFlight(self.clone())
    }

    /// Notes what a write of an answer's bytes did: bytes that reached the socket show the
    /// client taking them; a socket that took nothing starts its clock, if it has not.
    fn wrote(&self, polled: &Poll<std::io::Result<usize>>) {
        match polled {
            Poll::Ready(Ok(written)) if *written > 0 => {
                self.write_blocked_since
                    .store(NOTHING_PENDING, Ordering::Release);
            }
            Poll::Pending => {
                let _ = self.write_blocked_since.compare_exchange(
                    NOTHING_PENDING,
                    self.now(),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
            _ => {}
        }
    }

    /// The socket was flushed: hyper writes every byte it buffered before it flushes, so
    /// the answers whose body was done are written now.
    fn flushed(&self) {
        let written = self.awaiting_flush.swap(0, Ordering::AcqRel);
        if written > 0 {
            let now = self.now();
            self.idle_since.store(now, Ordering::Release);
            self.in_flight.fetch_sub(written, Ordering::AcqRel);
        }
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self, header_timeout: Duration, idle_timeout: Duration) -> Option<&'static str> {
        let now = self.now();
        let idle_ms = idle_timeout.as_millis() as u64;
        match self.write_blocked_since.load(Ordering::Acquire) {
            NOTHING_PENDING => {}
            // A client that takes nothing of its answer, done or streaming, is not held
            // for ever.
            since if now.saturating_sub(since) >= idle_ms => return Some("write_stalled"),
            _ => {}
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // A handler is answering, its answer's body streams, or it waits to be written.
            return None;
        }
        match self.pending_since.load(Ordering::Acquire) {
            NOTHING_PENDING => {
                let idle = now.saturating_sub(self.idle_since.load(Ordering::Acquire));
                (idle >= idle_ms).then_some("idle")
            }
            since => (now.saturating_sub(since) >= header_timeout.as_millis() as u64)
                .then_some("header_read"),
        }
    }
}

/// A request being answered, until its answer's body is done (or dropped) and the socket
/// flushed after it.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // Counted out at the next flush (see `Activity::flushed`). An answer hyper drops
        // unwritten is followed by a flush or by the connection's end.
        self.0.awaiting_flush.fetch_add(1, Ordering::AcqRel);
    }
}

/// The socket, noting when request bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_some();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.activity.wrote(&polled);
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Hyper serves the connection on one task: an answer is done, written and flushed
        // in turn, never during this call.
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        if matches!(polled, Poll::Ready(Ok(()))) {
            self.activity.flushed();
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.activity.wrote(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// An answer's body that keeps its request counted as in flight until it is sent: a
/// streamed answer (an MCP call's event stream) is not idle while it streams.
struct TrackedBody {
    body: Body,
    in_flight: Option<InFlight>,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.in_flight = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

fn is_probe(path: &str) -> bool {
    path == "/health" || path.starts_with("/health/")
}

/// The answer of the probe reserve to anything but a probe.
fn busy() -> Response<Body> {
    let body = serde_json::json!({"error": {
        "code": "server_busy",
        "message": "the server is serving as many connections as it allows \
                    (HTTP_MAX_CONNECTIONS); try again shortly"
    }});
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    probes_only: bool,
    shutdown: CancellationToken,
) {
    let activity = Activity::new();
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let in_flight = requests.begin();
        let app = app.clone();
        async move {
            let response = if probes_only && !is_probe(request.uri().path()) {
                busy()
            } else {
                request.extensions_mut().insert(ConnectInfo(peer));
                match app.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            };
            Ok::<_, Infallible>(response.map(|body| TrackedBody {
                body,
                in_flight: Some(in_flight),
            }))
        }
    });
    let (header_timeout, idle_timeout) = if probes_only {
        let timeout = limits.header_read_timeout.min(PROBE_HEADER_TIMEOUT);
        (timeout, timeout)
    } else {
        (limits.header_read_timeout, limits.idle_timeout)
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(!probes_only)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(connection);
    let check_every = (header_timeout.min(idle_timeout) / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut watchdog = tokio::time::interval(check_every);
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut draining = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(err) = served {
                    tracing::debug!(%err, %peer, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.cancelled(), if !draining => {
                if activity.in_flight.load(Ordering::Acquire) == 0 {
                    // Nothing is being answered: a partial request is abandoned by its
                    // sender's slowness, not by this shutdown.
                    return;
                }
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = watchdog.tick() => {
                if let Some(reason) = activity.expired(header_timeout, idle_timeout) {
                    metrics::counter!("http_connections_timed_out_total", "reason" => reason)
                        .increment(1);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Far more than loopback's socket buffers hold: most of it is still in hyper's buffers
    /// after the body gave its one frame.
    const LARGE: usize = 32 * 1024 * 1024;

    #[tokio::test]
    async fn a_large_answer_in_flight_at_shutdown_arrives_whole() {
        let app = Router::new().route("/large", axum::routing::get(|| async { vec![b'x'; LARGE] }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let limits = ConnectionLimits {
            max_connections: 4,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
        };
        let server = tokio::spawn(serve(listener, app, limits, shutdown.clone()));

        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /large HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        // The answer has begun; the client reads no more until shutdown has begun, so the
        // socket buffers fill and the rest waits in the server.
        let mut received = vec![0; 64 * 1024];
        let first = client.read(&mut received).await.unwrap();
        received.truncate(first);
        tokio::time::sleep(Duration::from_millis(200)).await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), client.read_to_end(&mut received))
            .await
            .expect("the answer ends")
            .expect("the connection closes cleanly");

        let head_end = received
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head")
            + 4;
        assert!(received.starts_with(b"HTTP/1.1 200"));
        assert_eq!(
            received.len() - head_end,
            LARGE,
            "the answer was cut at shutdown"
        );
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server stops once the answer is written")
            .unwrap();
    }

    /// A client that takes nothing of its answer is closed after the idle timeout: it gets
    /// part of the answer (what the sockets' buffers held) and then the connection's end.
    async fn a_client_that_takes_nothing_of(app: Router, path: &str) -> usize {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ConnectionLimits {
            max_connections: 4,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_millis(300),
        };
        tokio::spawn(serve(listener, app, limits, CancellationToken::new()));
        let mut client = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        client.write_all(request.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut received = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), client.read_to_end(&mut received))
            .await
            .expect("the connection was closed");
        received.len()
    }

    #[tokio::test]
    async fn a_client_that_takes_nothing_of_a_done_answer_is_not_held_for_ever() {
        let large = || async { vec![b'x'; LARGE] };
        let app = Router::new().route("/large", axum::routing::get(large));
        let received = a_client_that_takes_nothing_of(app, "/large").await;
        assert!(
            received < LARGE,
            "a stalled client was served {received} bytes"
        );
    }

    #[tokio::test]
    async fn a_client_that_takes_nothing_of_a_stream_is_not_held_for_ever() {
        let endless = || async {
            let chunks = futures_util::stream::repeat_with(|| {
                Ok::<_, Infallible>(Bytes::from(vec![b'x'; 64 * 1024]))
            });
            Body::from_stream(chunks)
        };
        let app = Router::new().route("/endless", axum::routing::get(endless));
        a_client_that_takes_nothing_of(app, "/endless").await;
    }
}
