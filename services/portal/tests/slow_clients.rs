//! Slow and malformed clients on a raw socket against the portal (issue 19, items 5 and 8), served in-process by
//! `id77_portal::run_with_limits` with short timeouts on a fresh database: a connection that sends nothing, a
//! trickled request and a body that stops arriving are closed within their limits; protocol-level refusals
//! carry a page and the security headers; `Permissions-Policy` always, HSTS when served over HTTPS.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use id77_platform::http_server::HttpLimits;
use id77_platform::testing::{drop_database, fresh_database_url};
use id77_portal::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const HEADER_TIMEOUT: Duration = Duration::from_millis(400);
const CLOSED_WITHIN: Duration = Duration::from_secs(4);

struct Portal {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    db: String,
}

impl Portal {
    async fn start(name: &str, secure: bool) -> Self {
        let db = fresh_database_url(name);
        let mut config = Config::for_gateway("http://127.0.0.1:1", &db);
        config.secure_cookie = secure;
        let limits = HttpLimits {
            header_timeout: HEADER_TIMEOUT,
            body_idle_timeout: Duration::from_millis(400),
            keep_alive_timeout: Duration::from_millis(1200),
            ..HttpLimits::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(id77_portal::run_with_limits(config, limits, listener, shutdown.clone()));
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(format!("http://{addr}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                return Self { addr, shutdown, task, db };
            }
            assert!(!task.is_finished(), "the portal stopped at start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the portal did not answer");
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        assert!(matches!(stopped, Ok(Ok(Ok(())))), "the portal stops at once: {stopped:?}");
        drop_database(&self.db).await;
    }
}

async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let start = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (received, Some(start.elapsed())),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return (received, None),
        }
    }
}

fn head_of(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase()
}

#[tokio::test]
async fn slow_clients_are_cut_and_refusals_carry_the_security_headers() {
    let portal = Portal::start("portal_slow", false).await;

    // A connection that sends nothing.
    let mut idle = TcpStream::connect(portal.addr).await.expect("connect");
    let (bytes, closed) = read_until_closed(&mut idle, CLOSED_WITHIN).await;
    assert!(closed.is_some() && bytes.is_empty(), "an idle connection is closed: {closed:?}");

    // Headers trickled a byte every 20 ms: never idle, never complete.
    let (mut reader, mut writer) = TcpStream::connect(portal.addr).await.expect("connect").into_split();
    let trickler = tokio::spawn(async move {
        let _ = writer.write_all(b"GET /connexion HTTP/1.1\r\nhost: portal\r\n").await;
        for byte in (0..100).flat_map(|i| format!("x-slow-{i}: 1\r\n").into_bytes()) {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(CLOSED_WITHIN, async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "trickled headers are cut after {:?}", start.elapsed());
    trickler.abort();

    // A form body announced and never sent.
    let mut stream = TcpStream::connect(portal.addr).await.expect("connect");
    stream
        .write_all(
            b"POST /connexion HTTP/1.1\r\nhost: portal\r\ncontent-type: application/x-www-form-urlencoded\r\n\
              content-length: 999999999\r\n\r\ne",
        )
        .await
        .expect("write");
    let (bytes, closed) = read_until_closed(&mut stream, CLOSED_WITHIN).await;
    assert!(closed.is_some(), "a stalled body is cut");
    let head = head_of(&bytes);
    assert!(head.starts_with("http/1.1 408"), "{head}");

    // Headers above the limit: a page, with the headers of every page.
    let mut stream = TcpStream::connect(portal.addr).await.expect("connect");
    let big = format!("GET / HTTP/1.1\r\nhost: portal\r\nx-big: {}\r\n\r\n", "a".repeat(40 * 1024));
    stream.write_all(big.as_bytes()).await.expect("write");
    let (bytes, _) = read_until_closed(&mut stream, CLOSED_WITHIN).await;
    let head = head_of(&bytes);
    assert!(head.starts_with("http/1.1 431"), "{head}");
    assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");
    assert!(head.contains("content-security-policy: default-src 'none'"), "{head}");
    assert!(head.contains("permissions-policy: "), "{head}");
    assert!(String::from_utf8_lossy(&bytes).contains("Requête refusée"));

    // Every page says no to browser features; HSTS only over HTTPS.
    let response = reqwest::get(format!("http://{}/healthz", portal.addr)).await.expect("answer");
    assert!(
        response.headers().get("permissions-policy").is_some_and(|v| v.to_str().is_ok_and(|v| v.contains("camera=()")))
    );
    assert!(response.headers().get("strict-transport-security").is_none());
    portal.stop().await;

    let https = Portal::start("portal_slow_https", true).await;
    let response = reqwest::get(format!("http://{}/healthz", https.addr)).await.expect("answer");
    assert_eq!(
        response.headers().get("strict-transport-security").and_then(|v| v.to_str().ok()),
        Some("max-age=31536000; includeSubDomains")
    );
    https.stop().await;
}
