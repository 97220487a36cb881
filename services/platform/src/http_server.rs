//! HTTP/1 serving for the gateway and the portal, hardened against slow clients (issue 19, items 5 and 8).
//!
//! `axum::serve` sets no timer: a client that trickles its request line, its headers or its body, or that opens
//! a connection and sends nothing, holds a task and a socket for ever. [`serve`] runs each connection with
//! hyper's HTTP/1 server itself and bounds every wait on the client ([`HttpLimits`]):
//!
//! - **Header timeout**: the request line and headers must be complete within `header_timeout` of their first
//!   byte (of the connection's opening for a new connection), else the connection is closed.
//! - **Keep-alive idle timeout**: a connection with no request in progress is closed after `keep_alive_timeout`.
//! - **Body idle timeout and minimum rate**: a request body from which nothing arrives for `body_idle_timeout`
//!   while the handler waits for it (`Content-Length: 999999999` with one byte sent), or that arrives slower
//!   than `body_min_rate` bytes per second of waiting after a first `body_idle_timeout` (a body trickled a
//!   byte at a time), ends the request with 408 and the connection is closed.
//! - **Connection ceiling**: at most `max_connections` connections are served at once; further ones wait in
//!   the listen backlog until one closes (the timeouts above guarantee that idle ones do).
//! - **Sizes**: request line and headers above `max_header_bytes` get 431, a target above `max_uri_bytes` 414.
//!
//! Refusals that hyper itself writes for requests it cannot parse (400, 414, 431) have no body; they are
//! replaced on the wire by the caller's [`Refusal`] (problem+json at the gateway), as are the 408 and 414
//! answered here: see [`RefusalIo`].
//!
//! Shutdown: no new connection is accepted, connections without a request in progress are closed at once, and
//! the others finish their request (bounded by the caller's drain deadline).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::bail;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::env_parse;

/// Default of `ID77_HTTP_HEADER_TIMEOUT_MS`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `ID77_HTTP_BODY_IDLE_TIMEOUT_MS`.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of `ID77_HTTP_KEEPALIVE_TIMEOUT_MS`: above the 60 s an ingress controller (ingress-nginx's
/// `upstream-keepalive-timeout`) keeps an idle upstream connection, so that the proxy, not the server, closes
/// it first and no request is sent on a connection being closed.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(75);
/// Default of `ID77_HTTP_BODY_MIN_RATE` (bytes per second; Kestrel's `MinRequestBodyDataRate` is 240).
pub const DEFAULT_BODY_MIN_RATE: u64 = 240;
/// Default of `ID77_HTTP_MAX_CONNECTIONS`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default of `ID77_HTTP_MAX_HEADER_BYTES`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;
/// Default of `ID77_HTTP_MAX_URI_BYTES`.
pub const DEFAULT_MAX_URI_BYTES: usize = 8 * 1024;

/// How long a connection may stay open after its request body timed out (for the 408 to be written).
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long a connection without a request in progress may stay open once shutdown started.
const STOP_GRACE: Duration = Duration::from_millis(500);

/// The bounds on what a client may make the server wait for; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// `ID77_HTTP_HEADER_TIMEOUT_MS` (default 10 000).
    pub header_timeout: Duration,
    /// `ID77_HTTP_BODY_IDLE_TIMEOUT_MS` (default 30 000).
    pub body_idle_timeout: Duration,
    /// `ID77_HTTP_BODY_MIN_RATE` (bytes per second, default 240; 0: no minimum).
    pub body_min_rate: u64,
    /// `ID77_HTTP_KEEPALIVE_TIMEOUT_MS` (default 75 000).
    pub keep_alive_timeout: Duration,
    /// `ID77_HTTP_MAX_CONNECTIONS` (default 4 096).
    pub max_connections: usize,
    /// `ID77_HTTP_MAX_HEADER_BYTES` (default 32 768): request line and headers; above, 431.
    pub max_header_bytes: usize,
    /// `ID77_HTTP_MAX_URI_BYTES` (default 8 192): the request target; above, 414.
    pub max_uri_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            body_min_rate: DEFAULT_BODY_MIN_RATE,
            keep_alive_timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_uri_bytes: DEFAULT_MAX_URI_BYTES,
        }
    }
}

impl HttpLimits {
    /// The limits from the environment (the defaults for unset variables); zero durations and counts refused.
    pub fn from_env() -> anyhow::Result<Self> {
        let ms = |name: &str, default: Duration| -> anyhow::Result<Duration> {
            let value: u64 = env_parse(name, default.as_millis() as u64)?;
            if value == 0 {
                bail!("{name} must be above 0");
            }
            Ok(Duration::from_millis(value))
        };
        let count = |name: &str, default: usize, min: usize| -> anyhow::Result<usize> {
            let value: usize = env_parse(name, default)?;
            if value < min {
                bail!("{name} must be at least {min}");
            }
            Ok(value)
        };
        Ok(Self {
            header_timeout: ms("ID77_HTTP_HEADER_TIMEOUT_MS", DEFAULT_HEADER_TIMEOUT)?,
            body_idle_timeout: ms("ID77_HTTP_BODY_IDLE_TIMEOUT_MS", DEFAULT_BODY_IDLE_TIMEOUT)?,
            body_min_rate: env_parse("ID77_HTTP_BODY_MIN_RATE", DEFAULT_BODY_MIN_RATE)?,
            keep_alive_timeout: ms("ID77_HTTP_KEEPALIVE_TIMEOUT_MS", DEFAULT_KEEP_ALIVE_TIMEOUT)?,
            max_connections: count("ID77_HTTP_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, 1)?,
            // hyper's own floor on its read buffer.
            max_header_bytes: count("ID77_HTTP_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES, 8192)?,
            max_uri_bytes: count("ID77_HTTP_MAX_URI_BYTES", DEFAULT_MAX_URI_BYTES, 256)?,
        })
    }
}

/// The body of a refusal answered before the application sees the request (400, 408, 414, 431): its media
/// type, its bytes and extra headers (the caller's security headers).
#[derive(Debug, Clone)]
pub struct RefusalBody {
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Renders the refusals answered at the connection level, by status.
pub type Refusal = Arc<dyn Fn(StatusCode) -> RefusalBody + Send + Sync>;

/// A plain-text refusal (the default of services without a problem format).
pub fn plain_refusal() -> Refusal {
    Arc::new(|status: StatusCode| RefusalBody {
        content_type: "text/plain; charset=utf-8",
        body: status.canonical_reason().unwrap_or("refused").as_bytes().to_vec(),
        headers: Vec::new(),
    })
}

impl RefusalBody {
    fn into_response(self, status: StatusCode, close: bool) -> Response<Body> {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        if close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    /// The whole HTTP/1.1 response, for [`RefusalIo`].
    fn to_wire(&self, status: StatusCode, close: bool) -> Vec<u8> {
        let mut wire = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        for (name, value) in &self.headers {
            wire.extend_from_slice(name.as_str().as_bytes());
            wire.extend_from_slice(b": ");
            wire.extend_from_slice(value.as_bytes());
            wire.extend_from_slice(b"\r\n");
        }
        if close {
            wire.extend_from_slice(b"connection: close\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(&self.body);
        wire
    }
}

/// What a connection is doing, for its timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request in progress since this instant (the previous response was sent).
    Idle(Instant),
    /// A request's head is being read since this instant.
    Head(Instant),
    /// A request is being handled (its response not yet sent).
    Busy,
    /// The request body timed out at this instant: the connection closes once the 408 is out.
    Closing(Instant),
}

/// State shared by a connection's socket, its service and its watcher.
struct Shared {
    phase: watch::Sender<Phase>,
    /// Requests handed to the application whose response body is not finished.
    in_flight: AtomicUsize,
}

impl Shared {
    fn set(&self, phase: Phase) {
        self.phase.send_if_modified(|current| {
            // A closing connection stays closing.
            if matches!(current, Phase::Closing(_)) || *current == phase {
                return false;
            }
            *current = phase;
            true
        });
    }

    fn phase(&self) -> Phase {
        *self.phase.borrow()
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled, within `limits`; refusals answered here are
/// rendered by `refusal`. Requests carry [`ConnectInfo<SocketAddr>`] like `into_make_service_with_connect_info`.
/// Returns when every connection has closed (the caller bounds the drain).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    refusal: Refusal,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    // hyper's own header timer starts whenever it waits for a head, idle connections included: a backstop
    // behind the finer timers of `watch`.
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.keep_alive_timeout.max(limits.header_timeout) + limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    let http = Arc::new(http);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit?,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = connection(stream, peer, app.clone(), http.clone(), limits, refusal.clone(), shutdown.clone());
        connections.spawn(async move {
            connection.await;
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// One connection: hyper's HTTP/1 state machine, its timers and its shutdown.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    http: Arc<hyper::server::conn::http1::Builder>,
    limits: HttpLimits,
    refusal: Refusal,
    shutdown: CancellationToken,
) {
    let (phase, mut phases) = watch::channel(Phase::Head(Instant::now()));
    let shared = Arc::new(Shared { phase, in_flight: AtomicUsize::new(0) });
    let io = TokioIo::new(RefusalIo::new(stream, shared.clone(), refusal.clone()));
    let service = ConnectionService { app, peer, shared: shared.clone(), limits, refusal };
    let conn = http.serve_connection(io, service);
    tokio::pin!(conn);
    // When shutdown started: from then on, a connection without a request in progress gets a moment to write
    // what it has left, no more.
    let mut stopping: Option<Instant> = None;
    loop {
        let phase = *phases.borrow_and_update();
        let deadline = match phase {
            Phase::Idle(since) => Some(since + limits.keep_alive_timeout),
            Phase::Head(since) => Some(since + limits.header_timeout),
            Phase::Closing(since) => Some(since + CLOSE_GRACE),
            Phase::Busy => None,
        };
        let deadline = match (deadline, stopping) {
            (Some(deadline), Some(since)) => Some(deadline.min(since + STOP_GRACE)),
            (deadline, _) => deadline,
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "HTTP connection ended");
                }
                return;
            }
            changed = phases.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = sleep_until(deadline) => {
                tracing::debug!(%peer, ?phase, "HTTP connection timed out");
                return;
            }
            () = shutdown.cancelled(), if stopping.is_none() => {
                stopping = Some(Instant::now());
                // Closes an idle connection at once, the others after their current response.
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The application behind one connection: adds the peer address, refuses long targets, bounds the request
/// body's idle time and tracks what is in progress.
#[derive(Clone)]
struct ConnectionService {
    app: Router,
    peer: SocketAddr,
    shared: Arc<Shared>,
    limits: HttpLimits,
    refusal: Refusal,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        self.shared.set(Phase::Busy);
        let guard = InFlight(self.shared.clone());
        let target = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
        if target > self.limits.max_uri_bytes {
            // The rest of the request (its body) is not read: the connection closes after the answer.
            let response = (self.refusal)(StatusCode::URI_TOO_LONG).into_response(StatusCode::URI_TOO_LONG, true);
            return Box::pin(async move { Ok(track(response, guard)) });
        }
        let timed_out = Arc::new(AtomicBool::new(false));
        let mut request = request.map(|body| {
            Body::new(IdleBody {
                inner: body,
                idle: self.limits.body_idle_timeout,
                min_rate: self.limits.body_min_rate,
                received: 0,
                waited: Duration::ZERO,
                waiting_since: None,
                sleep: None,
                timed_out: timed_out.clone(),
                shared: self.shared.clone(),
            })
        });
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let app = self.app.clone();
        let refusal = self.refusal.clone();
        Box::pin(async move {
            let response = match tower::ServiceExt::oneshot(app, request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let response = if timed_out.load(Ordering::SeqCst) {
                // Whatever the handler made of the failed body: the client was too slow.
                refusal(StatusCode::REQUEST_TIMEOUT).into_response(StatusCode::REQUEST_TIMEOUT, true)
            } else {
                response
            };
            Ok(track(response, guard))
        })
    }
}

/// One request in progress until dropped (with its response body, once sent).
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.set(Phase::Idle(Instant::now()));
        }
    }
}

/// The response with its body holding the request's [`InFlight`].
fn track(response: Response<Body>, guard: InFlight) -> Response<Body> {
    response.map(|body| Body::new(Tracked { inner: body, _guard: guard }))
}

struct Tracked {
    inner: Body,
    _guard: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body stopped arriving.
#[derive(Debug)]
pub struct BodyIdleTimeout(Duration);

impl std::fmt::Display for BodyIdleTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request body stopped arriving (idle timeout {:?}) or arrived too slowly", self.0)
    }
}

impl std::error::Error for BodyIdleTimeout {}

/// A request body that fails when nothing arrives for `idle` while it is being waited for, or when it arrives
/// slower than `min_rate` bytes per second of waiting (after a first `idle`). Only the time the handler spends
/// waiting counts (a handler busy elsewhere, or a `100 Continue` not yet sent, is not the client's doing).
struct IdleBody {
    inner: Incoming,
    idle: Duration,
    min_rate: u64,
    /// Bytes received so far.
    received: u64,
    /// Time spent waiting for the client, before the current wait.
    waited: Duration,
    /// Start of the current wait.
    waiting_since: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl IdleBody {
    /// When the current wait, started at `since`, becomes too long.
    fn deadline(&self, since: Instant) -> Instant {
        let idle = since + self.idle;
        if self.min_rate == 0 {
            return idle;
        }
        // Waiting may total `idle` plus the time the bytes received so far earn at the minimum rate.
        let earned = self.idle + Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        idle.min(since + earned.saturating_sub(self.waited))
    }
}

impl hyper::body::Body for IdleBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.timed_out.load(Ordering::SeqCst) {
            return Poll::Ready(Some(Err(Box::new(BodyIdleTimeout(this.idle)))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                this.sleep = None;
                if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(|f| f.data_ref())) {
                    this.received += data.map_or(0, |d| d.len() as u64);
                }
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => {
                let since = *this.waiting_since.get_or_insert_with(Instant::now);
                let deadline = this.deadline(since);
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.timed_out.store(true, Ordering::SeqCst);
                        this.shared.set(Phase::Closing(Instant::now()));
                        tracing::debug!(received = this.received, "request body too slow");
                        Poll::Ready(Some(Err(Box::new(BodyIdleTimeout(this.idle)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket of a connection. Reading the first byte of a request starts its head timer; and the bare
/// refusals hyper writes for requests it cannot parse (`400`, `414`, `431` with no body, written when no
/// request is in progress) are replaced by the caller's [`Refusal`].
struct RefusalIo {
    inner: TcpStream,
    shared: Arc<Shared>,
    refusal: Refusal,
    /// A replacement not yet fully written, and how much of it was.
    pending: Option<(Vec<u8>, usize)>,
}

impl RefusalIo {
    fn new(inner: TcpStream, shared: Arc<Shared>, refusal: Refusal) -> Self {
        Self { inner, shared, refusal, pending: None }
    }

    /// Writes what is left of a replacement; ready once it is all out.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written >= bytes.len() {
                self.pending = None;
                break;
            }
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// The replacement of `buf` if it is one of hyper's own bare refusals.
    fn replacement(&self, buf: &[u8]) -> Option<Vec<u8>> {
        if self.shared.in_flight.load(Ordering::SeqCst) != 0 || self.shared.phase() == Phase::Busy {
            return None;
        }
        let status = bare_refusal(buf)?;
        let close = true;
        Some((self.refusal)(status).to_wire(status, close))
    }
}

/// The status of `buf` if it is exactly a bodiless response head of status 400, 414 or 431 without a
/// `content-type`: what hyper writes when it cannot parse a request.
fn bare_refusal(buf: &[u8]) -> Option<StatusCode> {
    let head = std::str::from_utf8(buf).ok()?;
    let rest = head.strip_prefix("HTTP/1.1 ").or_else(|| head.strip_prefix("HTTP/1.0 "))?;
    let status = match rest.get(..4)? {
        "400 " => StatusCode::BAD_REQUEST,
        "414 " => StatusCode::URI_TOO_LONG,
        "431 " => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => return None,
    };
    // One complete head and nothing after it.
    let end = head.find("\r\n\r\n")?;
    if end + 4 != head.len() {
        return None;
    }
    let lower = head.to_ascii_lowercase();
    let bodiless = lower.contains("\r\ncontent-length: 0\r\n") && !lower.contains("\r\ntransfer-encoding:");
    (bodiless && !lower.contains("\r\ncontent-type:")).then_some(status)
}

impl AsyncRead for RefusalIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            // The first bytes of a request after an idle time: its head's timer starts.
            if let Phase::Idle(_) = self.shared.phase()
                && self.shared.in_flight.load(Ordering::SeqCst) == 0
            {
                self.shared.set(Phase::Head(Instant::now()));
            }
        }
        result
    }
}

impl AsyncWrite for RefusalIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_pending(cx))?;
        if let Some(replacement) = self.replacement(buf) {
            self.pending = Some((replacement, 0));
            // What hyper asked to write counts as written; the replacement goes out instead.
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_pending(cx))?;
        let mut nonempty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(first), None) = (nonempty.next(), nonempty.next())
            && let Some(replacement) = self.replacement(first)
        {
            self.pending = Some((replacement, 0));
            return Poll::Ready(Ok(first.len()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_s_bare_refusals_are_replaced() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(bare_refusal(bare), Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
        let bare = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(bare_refusal(bare), Some(StatusCode::BAD_REQUEST));
        // An application's own answer (typed), another status, a head with its body, part of a head.
        let typed = b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(bare_refusal(typed), None);
        assert_eq!(bare_refusal(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"), None);
        assert_eq!(bare_refusal(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n"), None);
        assert_eq!(bare_refusal(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}"), None);
        assert_eq!(bare_refusal(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n"), None);
    }

    #[test]
    fn refusals_on_the_wire_are_complete_responses() {
        let body = RefusalBody {
            content_type: "application/problem+json",
            body: b"{}".to_vec(),
            headers: vec![(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"))],
        };
        let wire = String::from_utf8(body.to_wire(StatusCode::URI_TOO_LONG, true)).unwrap_or_default();
        assert!(wire.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{wire}");
        assert!(wire.contains("\r\ncontent-type: application/problem+json\r\ncontent-length: 2\r\n"), "{wire}");
        assert!(wire.contains("\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n{}"), "{wire}");
    }

    #[test]
    fn limits_come_from_the_environment_with_defaults() {
        let limits = HttpLimits::from_env().unwrap_or_default();
        assert_eq!(limits, HttpLimits::default());
        assert!(limits.header_timeout < limits.keep_alive_timeout);
    }
}
