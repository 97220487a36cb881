//! Bounded shutdown and the two health answers (issue 16, item 5), on the real binaries.
//!
//! - With NATS gone (a private nats-server, stopped), then with every service's database blocked, SIGTERM stops
//!   every process (the five services, the gateway, a referral consumer) within 10 s, and by its own graceful
//!   path (exit status 0), not by the platform's last-resort deadline.
//! - Meanwhile readiness (the overall gRPC health, the consumer's `/readyz`) goes NOT_SERVING, and liveness (the
//!   `id77.liveness` gRPC health name, the consumer's `/livez`) stays SERVING: a dependency's outage must not
//!   restart the pods.
//! - A process whose stop is stuck exits at once on a second SIGTERM, and by itself at the deadline.
//!
//! Run: `cargo test -p id77-e2e --test shutdown` (needs the local PostgreSQL and NATS, and nats-server).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use id77_e2e::{NatsServer, Options, Platform, Stopped, block_database, eventually, provider_codes};
use id77_platform::grpc::{LIVENESS, ServingStatus, health_status};

/// What the platform promises: SIGTERM to exit, whatever PostgreSQL and NATS do.
const STOP_LIMIT: Duration = Duration::from_secs(10);
const SERVICES: [&str; 5] = ["membership", "catalogue", "requests", "routing", "billing"];

async fn status(platform: &Platform, service: &str, name: &str) -> Option<ServingStatus> {
    let url = platform.grpc_url(service)?;
    health_status(&url, name, Duration::from_secs(2)).await.ok()
}

/// Waits until every service reports readiness `ready` while its liveness stays SERVING.
async fn wait_health(platform: &Platform, ready: ServingStatus, why: &str) {
    for service in SERVICES {
        eventually(&format!("{service}: readiness {ready:?} ({why})"), Duration::from_secs(20), || async {
            (status(platform, service, "").await == Some(ready)).then_some(())
        })
        .await;
        let live = status(platform, service, LIVENESS).await;
        assert_eq!(live, Some(ServingStatus::Serving), "{service}: liveness while readiness is {ready:?} ({why})");
    }
}

async fn http_status(url: &str) -> Option<u16> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().ok()?;
    client.get(url).send().await.ok().map(|r| r.status().as_u16())
}

/// SIGTERM to every process at once; each must exit within [`STOP_LIMIT`], with status 0.
async fn stop_all_within_limit(platform: &mut Platform, why: &str) {
    let names = platform.process_names();
    for name in &names {
        assert!(platform.is_running(name), "{name} is running before the SIGTERM ({why})");
    }
    let stopped = platform.terminate_timed(&names, STOP_LIMIT + Duration::from_secs(5)).await;
    for Stopped { name, took, status } in &stopped {
        eprintln!("{why}: {name} stopped after {took:?} ({status:?})");
    }
    for Stopped { name, took, status } in stopped {
        let took = took.unwrap_or_else(|| panic!("{name} still ran {STOP_LIMIT:?} after SIGTERM ({why})"));
        assert!(took < STOP_LIMIT, "{name} took {took:?} to stop after SIGTERM ({why}); logs in {:?}", platform.logs);
        assert!(
            status.is_some_and(|s| s.success()),
            "{name} exited with {status:?} ({why}): not by its own clean stop; logs in {:?}",
            platform.logs
        );
    }
}

#[tokio::test]
async fn with_nats_gone_sigterm_stops_every_process_within_10_s() {
    let store = std::env::temp_dir().join(format!("id77-shutdown-nats-{}", uuid::Uuid::new_v4().simple()));
    let mut nats = NatsServer::start(&store).await.expect("private nats-server starts");
    let options = Options { nats_url: Some(nats.url.clone()), ..Options::default() };
    let mut platform = Platform::start_with(options).await.expect("platform starts");
    platform.reconcile_at_stop = false;
    let provider = provider_codes().expect("provider codes")[0].clone();
    let health = platform
        .start_referral_consumer_with_health(&provider, &["--rule", "accept-all"])
        .expect("referral consumer starts");
    wait_health(&platform, ServingStatus::Serving, "all up").await;
    eventually("the consumer's /readyz", Duration::from_secs(20), || async {
        (http_status(&format!("{health}/readyz")).await == Some(200)).then_some(())
    })
    .await;
    assert_eq!(http_status(&format!("{health}/livez")).await, Some(200), "the consumer's /livez");

    nats.stop();
    wait_health(&platform, ServingStatus::NotServing, "NATS stopped").await;
    eventually("the consumer's /readyz to follow NATS", Duration::from_secs(20), || async {
        (http_status(&format!("{health}/readyz")).await == Some(503)).then_some(())
    })
    .await;
    assert_eq!(http_status(&format!("{health}/livez")).await, Some(200), "the consumer's /livez with NATS gone");

    stop_all_within_limit(&mut platform, "NATS stopped").await;
    // NATS back for the clean-up (streams of this test's prefix), then the databases dropped.
    nats.start_again().await.expect("nats-server starts again");
    platform.stop().await;
}

#[tokio::test]
async fn with_the_databases_blocked_sigterm_stops_every_process_within_10_s() {
    let mut platform = Platform::start().await.expect("platform starts");
    platform.reconcile_at_stop = false;
    wait_health(&platform, ServingStatus::Serving, "all up").await;
    let urls: Vec<String> =
        SERVICES.iter().map(|s| platform.database_url(s).expect("database url").to_owned()).collect();
    for url in &urls {
        block_database(url).await.expect("database blocked");
    }
    wait_health(&platform, ServingStatus::NotServing, "databases blocked").await;
    stop_all_within_limit(&mut platform, "databases blocked").await;
    for url in &urls {
        id77_e2e::allow_database(url).await.expect("database allowed again");
    }
    platform.stop().await;
}

/// Set for the child process of the signal tests: this test binary, run again on [`stuck_stop_child`].
const CHILD: &str = "ID77_SHUTDOWN_TEST_CHILD";

/// Not a test by itself: in the child process, a program whose stop never ends after the shutdown signal.
#[test]
fn stuck_stop_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let shutdown = id77_platform::shutdown::on_signal();
        // Let the signal task install its handlers before saying so.
        tokio::time::sleep(Duration::from_millis(200)).await;
        println!("child ready");
        shutdown.cancelled().await;
        println!("child stopping");
        std::future::pending::<()>().await;
    });
}

/// Starts [`stuck_stop_child`] and waits until it listens for signals.
fn start_child() -> std::process::Child {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "stuck_stop_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("child ready") => break,
            Some(Ok(_)) => {}
            other => panic!("the child ended before it was ready: {other:?}"),
        }
    }
    // Keep draining its output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

fn sigterm(child: &std::process::Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success(), "kill -TERM");
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<(Duration, std::process::ExitStatus)> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some((started.elapsed(), status));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn a_second_sigterm_exits_a_stuck_stop_at_once() {
    let mut child = start_child();
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(1)).is_none(), "the stuck stop holds after one SIGTERM");
    sigterm(&child);
    let exited = wait_exit(&mut child, Duration::from_secs(2));
    let _ = child.kill();
    let (took, status) = exited.expect("a second SIGTERM exits at once");
    assert!(took < Duration::from_secs(1), "exited {took:?} after the second SIGTERM");
    assert_eq!(status.code(), Some(143), "exit status of a process ended by a second SIGTERM");
}

#[test]
fn a_stuck_stop_exits_at_the_deadline() {
    let mut child = start_child();
    sigterm(&child);
    let exited = wait_exit(&mut child, STOP_LIMIT + Duration::from_secs(2));
    let _ = child.kill();
    let (took, status) = exited.expect("a stuck stop ends by itself");
    let deadline = id77_platform::shutdown::HARD_DEADLINE;
    assert!(took >= deadline - Duration::from_millis(100) && took < STOP_LIMIT, "exited {took:?} after SIGTERM");
    assert_eq!(status.code(), Some(1), "exit status of a stop cut short");
}
