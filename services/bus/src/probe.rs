//! A small HTTP health endpoint for processes that serve neither gRPC nor HTTP (the referral consumer):
//! `GET /livez` answers 200 while the process runs (its runtime answers), `GET /readyz` 200 while its `ready`
//! check holds (e.g. its NATS connection is up), 503 otherwise. Kubernetes' `httpGet` probes ask them.
//!
//! Served with hyper's HTTP/1 server directly (no web framework for two fixed answers): `HEAD` is answered like
//! `GET` without the body, another method gets 405, another path 404. hyper's header timer bounds a client that
//! trickles its request (30 s).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use http::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The readiness check: true while the process can do its work.
type Ready = Arc<dyn Fn() -> bool + Send + Sync>;

/// Serves `/livez` and `/readyz` on `addr` until `shutdown`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    ready: impl Fn() -> bool + Send + Sync + 'static,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding the health address {addr}"))?;
    let local = listener.local_addr()?;
    let ready: Ready = Arc::new(ready);
    tokio::spawn(accept(listener, ready, shutdown));
    tracing::info!(%local, "health served on /livez and /readyz");
    Ok(local)
}

/// Accepts connections until `shutdown`; each is served on a task of its own.
async fn accept(listener: TcpListener, ready: Ready, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "health server: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        tokio::spawn(connection(stream, ready.clone(), shutdown.clone()));
    }
}

/// One connection, closed gracefully (after the request in progress) on `shutdown`.
async fn connection(stream: tokio::net::TcpStream, ready: Ready, shutdown: CancellationToken) {
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let response = answer(&request, ready.as_ref());
        async move { Ok::<_, Infallible>(response) }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new());
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "health connection ended");
    }
}

/// The answer to one request.
fn answer<B>(request: &Request<B>, ready: &(dyn Fn() -> bool + Send + Sync)) -> Response<String> {
    let (status, body) = match request.uri().path() {
        "/livez" => (StatusCode::OK, "ok"),
        "/readyz" if ready() => (StatusCode::OK, "ready"),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
        _ => return plain(StatusCode::NOT_FOUND, String::new()),
    };
    match *request.method() {
        // hyper writes a HEAD response's head only (its `content-length` says what GET would send).
        Method::GET | Method::HEAD => plain(status, body.to_owned()),
        _ => {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, String::new());
            response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET,HEAD"));
            response
        }
    }
}

fn plain(status: StatusCode, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if !response.body().is_empty() {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// One request over a fresh connection; the raw response (head and body).
    async fn ask(addr: SocketAddr, method: &str, path: &str) -> anyhow::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("{method} {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_string(&mut response)).await??;
        Ok(response)
    }

    fn status_and_body(response: &str) -> (&str, &str) {
        let status = response.split(' ').nth(1).unwrap_or_default();
        let body = response.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn liveness_always_and_readiness_while_the_check_holds() -> anyhow::Result<()> {
        let up = Arc::new(AtomicBool::new(false));
        let check = up.clone();
        let shutdown = CancellationToken::new();
        let addr = serve(([127, 0, 0, 1], 0).into(), move || check.load(Ordering::Relaxed), shutdown.clone()).await?;

        assert_eq!(status_and_body(&ask(addr, "GET", "/livez").await?), ("200", "ok"));
        assert_eq!(status_and_body(&ask(addr, "GET", "/readyz").await?), ("503", "not ready"));
        up.store(true, Ordering::Relaxed);
        let ready = ask(addr, "GET", "/readyz").await?;
        assert_eq!(status_and_body(&ready), ("200", "ready"));
        assert!(ready.to_ascii_lowercase().contains("content-type: text/plain; charset=utf-8"), "{ready}");

        let head = ask(addr, "HEAD", "/livez").await?;
        assert_eq!(status_and_body(&head), ("200", ""));
        assert!(head.to_ascii_lowercase().contains("content-length: 2"), "{head}");
        assert_eq!(status_and_body(&ask(addr, "POST", "/livez").await?).0, "405");
        assert_eq!(status_and_body(&ask(addr, "GET", "/metrics").await?).0, "404");

        shutdown.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while tokio::net::TcpStream::connect(addr).await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await
        .context("the health address still accepts connections after shutdown")?;
        Ok(())
    }
}
