//! A TCP proxy in front of a NATS server that loses the first pull requests its clients send, as a pull request
//! lost on its way (a replicated consumer electing its leader as the pull arrives): tests of the consumers' renewal
//! of a pull after missed heartbeats (`id77_bus::nats::pull_is_lost`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A TCP proxy in front of the test's NATS server that drops the first `drops` pull requests its client sends
/// (`PUB`/`HPUB` to `$JS.API.CONSUMER.MSG.NEXT.…`), as a pull request lost on its way; everything else passes.
/// Returns the proxy's URL and how many pull requests it dropped so far.
pub async fn pull_dropping_proxy(upstream: &str, drops: usize) -> std::io::Result<(String, Arc<AtomicUsize>)> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let upstream = upstream.trim_start_matches("nats://").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("nats://{}", listener.local_addr()?);
    let dropped = Arc::new(AtomicUsize::new(0));
    let count = dropped.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { return };
            let (client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut server_read, &mut client_write).await });
            let count = count.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(client_read);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let text = String::from_utf8_lossy(&line).into_owned();
                    let words: Vec<&str> = text.split_whitespace().collect();
                    let mut payload = Vec::new();
                    if matches!(words.first(), Some(&"PUB" | &"HPUB")) {
                        let size: usize = words.last().and_then(|s| s.parse().ok()).unwrap_or(0);
                        payload.resize(size + 2, 0);
                        if reader.read_exact(&mut payload).await.is_err() {
                            return;
                        }
                        let pull = words.get(1).is_some_and(|s| s.contains(".CONSUMER.MSG.NEXT."));
                        if pull && count.load(Ordering::SeqCst) < drops {
                            count.fetch_add(1, Ordering::SeqCst);
                            continue;
                        }
                    }
                    if server_write.write_all(&line).await.is_err() || server_write.write_all(&payload).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((url, dropped))
}
