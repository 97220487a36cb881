//! Catalogue search through the gateway against an axum hello-world, measured in the same run on the same
//! machine with the same load generator (`wrk`), as DESIGN §6 asks: requests/s, p50 and p99 of both, and
//! the ratio. Not a test: `make bench-catalogue` runs it by hand.
//!
//! The platform is the real one (every service binary, its own databases and NATS prefix, started by the
//! end-to-end harness); the gateway's rate limit must be off (`ID77_RATE_LIMIT_PER_MINUTE=0`, set by the
//! Makefile). The hello-world runs in its own process (this binary with `--hello <addr>`), like the gateway.
//!
//! Options (environment): `BENCH_DURATION` (default `10s`), `BENCH_CONNECTIONS` (default 32),
//! `BENCH_THREADS` (default 2), `BENCH_PATH` (default `/v1/offers?q=voirie`).

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// What wrk measured.
#[derive(Debug, Clone, Copy)]
struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// "1.23ms", "456.00us", "1.02s" → milliseconds.
fn millis(value: &str) -> Option<f64> {
    let (number, factor) = if let Some(v) = value.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = value.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

fn parse_wrk(output: &str) -> anyhow::Result<Figures> {
    let mut rps = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = 0;
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => rps = v.parse::<f64>().ok(),
            ["50%", v] => p50 = millis(v),
            ["99%", v] => p99 = millis(v),
            ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                errors += rest.iter().filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok()).sum::<u64>()
            }
            _ => {}
        }
    }
    Ok(Figures {
        rps: rps.context("no Requests/sec in wrk's output")?,
        p50_ms: p50.context("no 50% latency in wrk's output")?,
        p99_ms: p99.context("no 99% latency in wrk's output")?,
        errors,
    })
}

fn wrk(url: &str, duration: &str) -> anyhow::Result<Figures> {
    let (threads, connections) = (env_or("BENCH_THREADS", "2"), env_or("BENCH_CONNECTIONS", "32"));
    let output = Command::new("wrk")
        .args(["--latency", "-t", &threads, "-c", &connections, "-d", duration, url])
        .output()
        .context("running wrk (make bench-catalogue installs it: deploy/local/ensure-tools.sh wrk)")?;
    if !output.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    eprintln!("{text}");
    parse_wrk(&text)
}

/// Serves `GET /` → "Hello, World!" until killed.
async fn hello(addr: &str) -> anyhow::Result<()> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, addr] = args.as_slice()
        && flag == "--hello"
    {
        return hello(addr).await;
    }
    if std::env::var("ID77_RATE_LIMIT_PER_MINUTE").as_deref() != Ok("0") {
        bail!("set ID77_RATE_LIMIT_PER_MINUTE=0 (the gateway's rate limit would turn the run into 429s)");
    }
    let duration = env_or("BENCH_DURATION", "10s");
    let path = env_or("BENCH_PATH", "/v1/offers?q=voirie");

    let hello_addr = format!("127.0.0.1:{}", free_port()?);
    let mut server = Command::new(std::env::current_exe()?)
        .args(["--hello", &hello_addr])
        .stdout(Stdio::null())
        .spawn()
        .context("starting the hello-world")?;
    eprintln!("starting the platform (debug binaries, as make test builds them)...");
    let platform = id77_e2e::Platform::start().await;
    let result = async {
        let platform = platform.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let search = format!("{}{path}", platform.gateway);
        let check = std::process::Command::new("curl").args(["-sf", "-o", "/dev/null", &search]).status();
        if check.is_ok_and(|s| !s.success()) {
            bail!("{search} does not answer 200");
        }
        // Warm both up, then measure one after the other on the same machine.
        wrk(&format!("http://{hello_addr}/"), "2s")?;
        wrk(&search, "2s")?;
        let h = wrk(&format!("http://{hello_addr}/"), &duration)?;
        let s = wrk(&search, &duration)?;
        Ok((h, s))
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    if let Ok(platform) = platform {
        platform.stop().await;
    }
    let (h, s) = result?;
    println!("| target | requests/s | p50 | p99 | errors |");
    println!("|---|---:|---:|---:|---:|");
    println!("| axum hello-world `GET /` | {:.0} | {:.2} ms | {:.2} ms | {} |", h.rps, h.p50_ms, h.p99_ms, h.errors);
    println!("| gateway `GET {path}` | {:.0} | {:.2} ms | {:.2} ms | {} |", s.rps, s.p50_ms, s.p99_ms, s.errors);
    println!();
    println!("ratio search / hello-world: {:.3} (target: at least 0.333)", s.rps / h.rps);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_report() {
        let out = "Running 10s test @ http://127.0.0.1:1/\n  Latency Distribution\n     50%  312.00us\n     75%  1.20ms\n     99%    1.05s\n  81234 requests in 10.00s, 9.8MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:   8123.40\n";
        let f = match parse_wrk(out) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        assert_eq!((f.rps, f.p50_ms, f.p99_ms, f.errors), (8123.40, 0.312, 1050.0, 3));
        assert!(parse_wrk("nothing").is_err());
    }
}
