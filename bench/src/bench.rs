//! `make bench`: the platform's throughput against the machine's limits, measured in one run on one machine
//! (DESIGN §6). Not a test.
//!
//! 1. Limits: pgbench with a two-insert transaction on the same PostgreSQL (a custom script, `-c/-j/-T`), and an
//!    axum hello-world in its own process driven by the same Rust load generator as the gateway.
//! 2. The journey: real communes join, a closed loop of clients submits requests through the gateway and the
//!    provider's consumer (the library, in this process) receives each referral; latency is from the start of
//!    the submission to the referral's arrival at the consumer, throughput is referrals delivered per second.
//! 3. Catalogue search through the gateway (`GET /v1/offers?q=voirie`), by the same load generator: anonymous (which
//!    the gateway's edge cache may answer) and a member admin's (`eligible=true` with its token; the edge may
//!    answer it from that member's own earlier answer, never from another member's).
//!
//! For each: throughput, p50/p95/p99 (HDR histogram), CPU per request (user+system time of the platform's own
//! processes from /proc/<pid>/stat; PostgreSQL's backends for pgbench), and the ratio to its limit. Then each
//! service's RSS idle and its peak under load (VmRSS, VmHWM), and its time to ready after a restart. The table is
//! also written as JSON to `$CARGO_TARGET_DIR/bench/latest.json` (`target/bench/latest.json` by default), so a
//! figure can be read by a program.
//!
//! Options (environment): `BENCH_DURATION` seconds per phase (default 10), `BENCH_CONNECTIONS` (closed-loop
//! clients, default 32), `BENCH_JOURNEY_CLIENTS` (default 16), `BENCH_MEMBERS` (default 4),
//! `BENCH_PATH` (default `/v1/offers?q=voirie`), `ID77_E2E_PROFILE=release` (the Makefile's BENCH_PROFILE).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use id77_e2e::load::{self, Member};
use id77_e2e::{Api, Options, Platform};
use id77_proto::routing::v1::ReferralOffered;
use id77_referral_consumer::{Decision, Handler};
use tokio_util::sync::CancellationToken;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(pid, false)
}

/// utime + stime of a process, plus with `children` the cutime + cstime of its children that have exited and
/// been waited for (PostgreSQL's backends end with pgbench's connections: only the postmaster's cutime keeps
/// their CPU time).
fn stat_cpu_seconds(pid: u32, children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the command (which may hold spaces) start after the last ')'.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime, stime, cutime and cstime are fields 14 to 17 of stat, 12 to 15 after the state field.
    let own = ticks(11) + ticks(12);
    (if children { own + ticks(13) + ticks(14) } else { own }) / TICKS_PER_SECOND
}

/// CPU seconds of every process whose command is `postgres` (the postmaster with its exited children, and the
/// live backends; the machine is shared, so this includes other clients' work: an upper bound).
fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .map(|pid| stat_cpu_seconds(pid, true))
        .sum()
}

/// Transactions committed so far in each database of the server, by name (`pg_stat_database`, reported by backends
/// at most a second late), to count the transactions one journey costs.
/// `ANALYZE` in each service's database (what autovacuum does within a minute of a deployment's first writes).
fn analyze(platform: &Platform) {
    for service in ["membership", "catalogue", "requests", "routing", "billing"] {
        let Some(url) = platform.database_url(service) else { continue };
        match Command::new("psql").args([url, "-X", "-q", "-c", "ANALYZE"]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("ANALYZE of {service}: {}", String::from_utf8_lossy(&out.stderr).trim()),
            Err(error) => eprintln!("ANALYZE of {service}: {error}"),
        }
    }
}

fn pg_commits_by_database() -> HashMap<String, f64> {
    let any = id77_platform::testing::fresh_database_url("x");
    let url = format!("{}/postgres", any.rsplit_once('/').map_or("", |(base, _)| base));
    let Ok(out) = Command::new("psql")
        .args([
            &url,
            "-X",
            "-A",
            "-t",
            "-F",
            "\t",
            "-c",
            "SELECT coalesce(datname, ''), xact_commit FROM pg_stat_database",
        ])
        .output()
    else {
        return HashMap::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (name, n) = line.split_once('\t')?;
            Some((name.to_owned(), n.trim().parse::<f64>().ok()?))
        })
        .collect()
}

/// Commits per journey of each database that committed any during the journey, most first; a test database's
/// name (`<prefix><service>_<id>`) is shortened to its service.
fn commits_by_database(
    before: &HashMap<String, f64>,
    after: &HashMap<String, f64>,
    journeys: u64,
) -> Vec<(String, f64)> {
    let mut rows: Vec<(String, f64)> = after
        .iter()
        .map(|(name, n)| {
            let short = name
                .strip_prefix(id77_platform::testing::TEST_DB_PREFIX)
                .and_then(|rest| rest.rsplit_once('_').map(|(label, _)| label))
                .unwrap_or(name);
            (short.to_owned(), (n - before.get(name).copied().unwrap_or(0.0)) / journeys.max(1) as f64)
        })
        .filter(|(_, n)| *n > 0.0)
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    rows
}

/// A `/proc/<pid>/status` field in KiB (VmRSS, VmHWM).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// One measured target.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    per_second: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    cpu_ms: f64,
    errors: u64,
    /// CPU ms per request of each platform process (where the time goes).
    by_process: Vec<(String, f64)>,
    /// PostgreSQL transactions committed per request (journey only).
    commits_per_request: f64,
    /// The same by database (journey only): which service's transactions they are.
    commits_by_database: Vec<(String, f64)>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant, valid bounds")
}

fn row(name: &str, count: u64, elapsed: Duration, h: &Histogram<u64>, cpu_s: f64, errors: u64) -> Row {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Row {
        name: name.to_owned(),
        per_second: count as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_ms: ms(0.50),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
        cpu_ms: if count == 0 { 0.0 } else { cpu_s * 1000.0 / count as f64 },
        errors,
        by_process: Vec::new(),
        commits_per_request: f64::NAN,
        commits_by_database: Vec::new(),
    }
}

/// A closed loop of `clients` GETs on `url` for `duration`; returns (ok count, errors, histogram in µs, elapsed).
async fn get_loop(url: &str, clients: usize, duration: Duration) -> (u64, u64, Histogram<u64>, Duration) {
    get_loop_as(url, None, clients, duration).await
}

/// [`get_loop`] with a bearer token on every call (`None`: anonymous).
async fn get_loop_as(
    url: &str,
    token: Option<&str>,
    clients: usize,
    duration: Duration,
) -> (u64, u64, Histogram<u64>, Duration) {
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build().unwrap_or_default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, token) = (http.clone(), url.to_owned(), token.map(str::to_owned));
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut h) = (0u64, 0u64, histogram());
            while started.elapsed() < duration {
                let t = Instant::now();
                let request = http.get(&url);
                let request = match &token {
                    Some(token) => request.bearer_auth(token),
                    None => request,
                };
                match request.send().await {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(_) => {
                            ok += 1;
                            let _ = h.record(t.elapsed().as_micros() as u64);
                        }
                        Err(_) => errors += 1,
                    },
                    _ => errors += 1,
                }
            }
            (ok, errors, h)
        }));
    }
    let (mut ok, mut errors, mut h) = (0, 0, histogram());
    for task in tasks {
        if let Ok((o, e, th)) = task.await {
            ok += o;
            errors += e;
            let _ = h.add(th);
        }
    }
    (ok, errors, h, started.elapsed())
}

/// pgbench with a two-insert transaction on its own database of the same server.
fn pgbench(duration: Duration) -> anyhow::Result<Row> {
    let url = id77_platform::testing::fresh_database_url("pgbench");
    let dir = std::env::temp_dir().join(format!("id77-pgbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("two-inserts.sql");
    std::fs::write(
        &script,
        "\\set id random(1, 1000000000)\nBEGIN;\nINSERT INTO bench_a (v) VALUES (:id);\nINSERT INTO bench_b (v) VALUES (:id);\nEND;\n",
    )?;
    let (base, name) = url.rsplit_once('/').context("database url")?;
    let psql = |db: &str, sql: &str| -> anyhow::Result<()> {
        let status = Command::new("psql")
            .args([&format!("{base}/{db}"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdout(Stdio::null())
            .status()
            .context("running psql")?;
        anyhow::ensure!(status.success(), "psql {sql} failed");
        Ok(())
    };
    psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
    let result = (|| {
        psql(
            name,
            "CREATE TABLE bench_a (id bigserial PRIMARY KEY, v bigint NOT NULL, at timestamptz NOT NULL DEFAULT now()); \
             CREATE TABLE bench_b (id bigserial PRIMARY KEY, v bigint NOT NULL, at timestamptz NOT NULL DEFAULT now());",
        )?;
        let clients = env_u64("BENCH_PGBENCH_CLIENTS", 8).to_string();
        let cpu_before = postgres_cpu_seconds();
        let output = Command::new("pgbench")
            .args(["-n", "-r", "-c", &clients, "-j", "2", "-T", &duration.as_secs().to_string(), "-f"])
            .arg(&script)
            .arg(&url)
            .output()
            .context("running pgbench (make bench installs it: deploy/local/ensure-tools.sh pgbench)")?;
        let cpu = postgres_cpu_seconds() - cpu_before;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        anyhow::ensure!(output.status.success(), "pgbench failed: {}", String::from_utf8_lossy(&output.stderr));
        eprintln!("{text}");
        let tps = text
            .lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse::<f64>().ok())
            .context("no tps in pgbench's output")?;
        let latency = text
            .lines()
            .find(|l| l.starts_with("latency average = "))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        let count = (tps * duration.as_secs_f64()) as u64;
        Ok(Row {
            name: "pgbench two-insert transaction (limit of the journey)".into(),
            per_second: tps,
            p50_ms: latency,
            p95_ms: f64::NAN,
            p99_ms: f64::NAN,
            cpu_ms: if count == 0 { 0.0 } else { cpu * 1000.0 / count as f64 },
            errors: 0,
            by_process: Vec::new(),
            commits_per_request: 1.0,
            commits_by_database: Vec::new(),
        })
    })();
    let _ = psql("postgres", &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The provider's consumer: accepts every referral and notes when each arrived.
struct Recorder {
    arrivals: Mutex<HashMap<String, Instant>>,
}

impl Handler for Recorder {
    fn referral<'a>(&'a self, referral: &'a ReferralOffered) -> BoxFuture<'a, Option<Decision>> {
        if let Ok(mut arrivals) = self.arrivals.lock() {
            arrivals.entry(referral.request_id.clone()).or_insert_with(Instant::now);
        }
        Box::pin(async { Some(Decision::Accept) })
    }
}

/// Processes of the platform, by name, with their pids.
fn platform_pids(platform: &Platform) -> Vec<(String, u32)> {
    platform.process_names().into_iter().filter_map(|n| platform.pid(&n).map(|p| (n, p))).collect()
}

fn platform_cpu(pids: &[(String, u32)]) -> f64 {
    pids.iter().map(|(_, p)| cpu_seconds(*p)).sum()
}

/// CPU seconds of each platform process, and of PostgreSQL (every `postgres` process of the machine).
fn cpu_by_process(pids: &[(String, u32)]) -> Vec<(String, f64)> {
    let mut by: Vec<(String, f64)> = pids.iter().map(|(n, p)| (n.clone(), cpu_seconds(*p))).collect();
    by.push(("postgres (every backend)".to_owned(), postgres_cpu_seconds()));
    by.push(("this load generator and partner consumer".to_owned(), cpu_seconds(std::process::id())));
    by
}

/// CPU ms per request of each process between two samples.
fn per_request(before: &[(String, f64)], after: &[(String, f64)], count: u64) -> Vec<(String, f64)> {
    after
        .iter()
        .map(|(name, a)| {
            let b = before.iter().find(|(n, _)| n == name).map_or(0.0, |(_, b)| *b);
            (name.clone(), if count == 0 { 0.0 } else { (a - b) * 1000.0 / count as f64 })
        })
        .collect()
}

async fn journey(
    platform: &Platform,
    members: &[Member],
    offer_id: &str,
    provider: &str,
    duration: Duration,
    phase: &str,
) -> anyhow::Result<Row> {
    let mut config = id77_referral_consumer::Config::new(platform.nats_url.clone(), provider.to_owned())?;
    config.prefix = platform.prefix.clone();
    let consumer = Arc::new(id77_referral_consumer::ReferralConsumer::connect(config).await?);
    let recorder = Arc::new(Recorder { arrivals: Mutex::new(HashMap::new()) });
    let stop = CancellationToken::new();
    let running = {
        let (consumer, recorder, stop) = (consumer.clone(), recorder.clone(), stop.clone());
        tokio::spawn(async move { consumer.run(recorder.as_ref(), stop).await })
    };
    let pids = platform_pids(platform);
    let cpu_before = platform_cpu(&pids);
    let by_before = cpu_by_process(&pids);
    let commits_before = pg_commits_by_database();
    let clients = env_u64("BENCH_JOURNEY_CLIENTS", 16) as usize;
    let started = Instant::now();
    let submitted: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut member = members[c % members.len()].clone();
        let (api, body, submitted, phase) =
            (Api::new(&platform.gateway), load::request_body(offer_id, c as u64), submitted.clone(), phase.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut errors = 0u64;
            while started.elapsed() < duration {
                let t = Instant::now();
                let s =
                    load::submit(&api, &mut member, &format!("{phase}-{c}-{n}"), &body, Duration::from_secs(30)).await;
                n += 1;
                errors += u64::from(s.rejected_attempts);
                match s.request_id {
                    Some(id) => submitted.lock().map(|mut v| v.push((id, t))).unwrap_or(()),
                    None => errors += 1,
                }
            }
            errors
        }));
    }
    let mut errors = 0;
    for task in tasks {
        errors += task.await.unwrap_or(0);
    }
    let submitted = submitted.lock().map(|v| v.clone()).unwrap_or_default();
    // Wait for the last referrals to arrive (at most 30 s). Only this phase's requests count: the warm-up's
    // referrals arrive too (they waited in the stream for the consumer), and counting them ended the wait early
    // with as many referrals still in flight (the 4 "lost" of the first run, one warm-up per member).
    let waiting = Instant::now();
    loop {
        let arrived = recorder
            .arrivals
            .lock()
            .map(|a| submitted.iter().filter(|(id, _)| a.contains_key(id)).count())
            .unwrap_or(0);
        if arrived >= submitted.len() || waiting.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = platform_cpu(&pids) - cpu_before;
    let by_after = cpu_by_process(&pids);
    // Let the backends report their last commits.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let commits_after = pg_commits_by_database();
    let commits = commits_after.values().sum::<f64>() - commits_before.values().sum::<f64>();
    stop.cancel();
    let _ = running.await;
    let arrivals = recorder.arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    let mut h = histogram();
    let mut last = started;
    let mut delivered = 0u64;
    for (id, t) in &submitted {
        if let Some(at) = arrivals.get(id) {
            delivered += 1;
            last = last.max(*at);
            let _ = h.record(at.saturating_duration_since(*t).as_micros() as u64);
        }
    }
    let lost = submitted.len() as u64 - delivered;
    if lost > 0 {
        eprintln!("journey: {lost} submitted requests had no referral delivered within 30 s");
    }
    let mut journey = row(
        &format!("journey: submit → referral at the consumer ({clients} clients)"),
        delivered,
        last.duration_since(started),
        &h,
        cpu,
        errors + lost,
    );
    journey.by_process = per_request(&by_before, &by_after, delivered);
    if delivered > 0 {
        eprintln!(
            "journey: {:.1} PostgreSQL transactions committed per journey ({commits} in all, every database of \
             the server, the lifecycle's follow-ups included)",
            commits / delivered as f64
        );
        journey.commits_per_request = commits / delivered as f64;
        journey.commits_by_database = commits_by_database(&commits_before, &commits_after, delivered);
    }
    Ok(journey)
}

fn print_table(rows: &[(Row, Option<(&Row, f64)>)]) {
    let f = |v: f64| if v.is_nan() { "–".to_owned() } else { format!("{v:.2}") };
    println!("| target | per second | p50 ms | p95 ms | p99 ms | CPU ms/req | errors | ratio to limit (target) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for (r, limit) in rows {
        let ratio = match limit {
            Some((l, target)) => format!(
                "{:.3} of {} ({}); CPU {:.1}×",
                r.per_second / l.per_second.max(1e-9),
                l.name.split_whitespace().next().unwrap_or("limit"),
                if r.per_second / l.per_second.max(1e-9) >= *target {
                    format!("≥ {target:.3}: met")
                } else {
                    format!("≥ {target:.3}: NOT met")
                },
                r.cpu_ms / l.cpu_ms.max(1e-9)
            ),
            None => "limit".to_owned(),
        };
        println!(
            "| {} | {:.0} | {} | {} | {} | {:.3} | {} | {} |",
            r.name,
            r.per_second,
            f(r.p50_ms),
            f(r.p95_ms),
            f(r.p99_ms),
            r.cpu_ms,
            r.errors,
            ratio
        );
    }
}

/// NaN (not measured) as JSON null.
fn finite(v: f64) -> serde_json::Value {
    if v.is_finite() { serde_json::json!(v) } else { serde_json::Value::Null }
}

/// One row of the table as JSON; `limit`: what its ratio is taken against.
fn row_json(r: &Row, limit: Option<&Row>) -> serde_json::Value {
    serde_json::json!({
        "name": r.name,
        "per_second": finite(r.per_second),
        "p50_ms": finite(r.p50_ms),
        "p95_ms": finite(r.p95_ms),
        "p99_ms": finite(r.p99_ms),
        "cpu_ms": finite(r.cpu_ms),
        "errors": r.errors,
        "ratio": limit.map_or(serde_json::Value::Null, |l| finite(r.per_second / l.per_second.max(1e-9))),
        "cpu_ms_by_process": r.by_process.iter().map(|(n, v)| (n.clone(), finite(*v)))
            .collect::<serde_json::Map<_, _>>(),
    })
}

/// `$CARGO_TARGET_DIR/bench`, else `target/bench` (where cargo puts its output).
fn bench_output_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| std::path::PathBuf::from("target"), std::path::PathBuf::from)
        .join("bench")
}

/// Serves `GET /` → "Hello, World!" until killed.
async fn hello(addr: &str) -> anyhow::Result<()> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, addr] = args.as_slice()
        && flag == "--hello"
    {
        return hello(addr).await;
    }
    let duration = Duration::from_secs(env_u64("BENCH_DURATION", 10));
    let connections = env_u64("BENCH_CONNECTIONS", 32) as usize;
    let path = std::env::var("BENCH_PATH").unwrap_or_else(|_| "/v1/offers?q=voirie".into());

    eprintln!("pgbench: two-insert transaction, {duration:?}...");
    let pg = pgbench(duration)?;

    let hello_addr = format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port());
    let mut server = Command::new(std::env::current_exe()?)
        .args(["--hello", &hello_addr])
        .stdout(Stdio::null())
        .spawn()
        .context("starting the hello-world")?;
    let profile = std::env::var("ID77_E2E_PROFILE").unwrap_or_else(|_| "debug".into());
    eprintln!("starting the platform ({profile} binaries)...");
    let options =
        Options { gateway_env: vec![("ID77_RATE_LIMIT_PER_MINUTE".into(), "0".into())], ..Options::default() };
    let platform = Platform::start_with(options).await;
    let result = async {
        let mut platform = platform.map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let outcome = measure(&mut platform, &pg, &hello_addr, server.id(), duration, connections, &path).await;
        platform.stop().await;
        outcome
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    result
}

async fn measure(
    platform: &mut Platform,
    pg: &Row,
    hello_addr: &str,
    hello_pid: u32,
    duration: Duration,
    connections: usize,
    path: &str,
) -> anyhow::Result<()> {
    let api = Api::new(&platform.gateway);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle: Vec<(String, u64)> =
        platform_pids(platform).iter().map(|(n, p)| (n.clone(), status_kib(*p, "VmRSS"))).collect();

    let members = load::join_communes(&api, env_u64("BENCH_MEMBERS", 4) as usize).await?;
    let (offer_id, provider) = load::billed_offer(&api, "integrated_engineering").await?;
    let mut ready_members = Vec::new();
    for (i, mut m) in members.into_iter().enumerate() {
        let started = Instant::now();
        while load::submit(
            &api,
            &mut m,
            &format!("warmup-{i}"),
            &load::request_body(&offer_id, 0),
            Duration::from_secs(5),
        )
        .await
        .request_id
        .is_none()
        {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("member {} never allowed to submit", m.name);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ready_members.push(m);
    }

    // The services' tables were created empty a minute ago. A deployment's tables hold its history and autovacuum
    // keeps their statistics (its naptime is a minute, longer than the journey). So the journey first runs a few
    // seconds unmeasured, then each service database is analyzed, then the measure. Analyzed after the four
    // requests above (one page per table), the planner chose sequential scans for lookups by key, and the services'
    // prepared statements kept them for the whole run while the tables grew (pg_stat_statements: 100 to 235 buffers
    // per lookup at the end of a run); not analyzed at all, it read the idempotency key through the member's other
    // index (0.23 ms a submission). Neither is how a deployment runs.
    let warmup = Duration::from_secs(env_u64("BENCH_JOURNEY_WARMUP_SECS", 3));
    eprintln!("journey warm-up: {warmup:?}...");
    journey(platform, &ready_members, &offer_id, &provider, warmup, "warmup").await?;
    analyze(platform);
    eprintln!("journey: {duration:?}...");
    let journey = journey(platform, &ready_members, &offer_id, &provider, duration, "bench").await?;

    let hello_url = format!("http://{hello_addr}/");
    let search_url = format!("{}{path}", platform.gateway);
    eprintln!("warming up hello-world and search...");
    get_loop(&hello_url, connections, Duration::from_secs(2)).await;
    get_loop(&search_url, connections, Duration::from_secs(2)).await;
    eprintln!("hello-world: {duration:?}...");
    let cpu = cpu_seconds(hello_pid);
    let (ok, errors, h, elapsed) = get_loop(&hello_url, connections, duration).await;
    let hello = row(
        &format!("axum hello-world `GET /` ({connections} clients)"),
        ok,
        elapsed,
        &h,
        cpu_seconds(hello_pid) - cpu,
        errors,
    );
    eprintln!("search: {duration:?}...");
    let pids = platform_pids(platform);
    let cpu = platform_cpu(&pids);
    let by_before = cpu_by_process(&pids);
    let (ok, errors, h, elapsed) = get_loop(&search_url, connections, duration).await;
    let by_after = cpu_by_process(&pids);
    let mut search = row(
        &format!("gateway `GET {path}` ({connections} clients)"),
        ok,
        elapsed,
        &h,
        platform_cpu(&pids) - cpu,
        errors,
    );
    search.by_process = per_request(&by_before, &by_after, ok);

    // A member's search: the member admin's token and `eligible=true`, never answered from the gateway's edge
    // cache (that keeps anonymous answers only), so every call reaches the catalogue.
    let member = ready_members.first().context("no member joined")?;
    let separator = if path.contains('?') { '&' } else { '?' };
    let member_path = format!("{path}{separator}eligible=true");
    let member_url = format!("{}{member_path}", platform.gateway);
    get_loop_as(&member_url, Some(&member.token), connections, Duration::from_secs(2)).await;
    eprintln!("member's search: {duration:?}...");
    let cpu = platform_cpu(&pids);
    let by_before = cpu_by_process(&pids);
    let (ok, errors, h, elapsed) = get_loop_as(&member_url, Some(&member.token), connections, duration).await;
    let by_after = cpu_by_process(&pids);
    let mut member_search = row(
        &format!("member admin `GET {member_path}` ({connections} clients)"),
        ok,
        elapsed,
        &h,
        platform_cpu(&pids) - cpu,
        errors,
    );
    member_search.by_process = per_request(&by_before, &by_after, ok);

    let peak: Vec<(String, u64)> = pids.iter().map(|(n, p)| (n.clone(), status_kib(*p, "VmHWM"))).collect();

    // Time to ready: each service restarted while PostgreSQL and NATS answer, until the gateway is ready again.
    let mut ready = Vec::new();
    for service in ["membership", "catalogue", "requests", "routing", "billing", "gateway"] {
        platform.kill(service)?;
        let started = Instant::now();
        platform.restart(service)?;
        let http = reqwest::Client::new();
        loop {
            let ok =
                http.get(format!("{}/readyz", platform.gateway)).send().await.is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("{service} not ready 60 s after a restart");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        ready.push((service, started.elapsed()));
    }

    println!();
    print_table(&[
        (pg.clone(), None),
        (journey.clone(), Some((pg, 0.10))),
        (hello.clone(), None),
        (search.clone(), Some((&hello, 1.0 / 3.0))),
        (member_search.clone(), Some((&hello, 1.0 / 3.0))),
    ]);
    println!();
    println!("| CPU ms per request, by process | journey | search | member's search |");
    println!("|---|---:|---:|---:|");
    for (name, j) in &journey.by_process {
        let s = search.by_process.iter().find(|(n, _)| n == name).map_or(0.0, |(_, v)| *v);
        let m = member_search.by_process.iter().find(|(n, _)| n == name).map_or(0.0, |(_, v)| *v);
        println!("| {name} | {j:.3} | {s:.3} | {m:.3} |");
    }
    println!();
    println!(
        "PostgreSQL transactions committed per journey: {:.1} (pgbench: 1 per transaction; every database of the \
         server, the follow-ups of each journey included: acceptance, quote, statuses, mails)",
        journey.commits_per_request
    );
    let by_database: Vec<String> =
        journey.commits_by_database.iter().map(|(name, n)| format!("{name} {n:.2}")).collect();
    println!("By database, per journey: {}", by_database.join(", "));
    println!();
    println!("| process | RSS idle MiB | peak RSS under load MiB (VmHWM) | time to ready after a restart |");
    println!("|---|---:|---:|---:|");
    for (name, idle_kib) in &idle {
        let peak_kib = peak.iter().find(|(n, _)| n == name).map_or(0, |(_, k)| *k);
        let to_ready =
            ready.iter().find(|(s, _)| s == name).map_or("–".to_owned(), |(_, d)| format!("{} ms", d.as_millis()));
        println!("| {name} | {:.1} | {:.1} | {to_ready} |", *idle_kib as f64 / 1024.0, peak_kib as f64 / 1024.0);
    }
    let json = serde_json::json!({
        "profile": std::env::var("ID77_E2E_PROFILE").unwrap_or_else(|_| "debug".into()),
        "duration_s": duration.as_secs(),
        "rows": {
            "pgbench": row_json(pg, None),
            "journey": row_json(&journey, Some(pg)),
            "hello_world": row_json(&hello, None),
            "search": row_json(&search, Some(&hello)),
            "member_search": row_json(&member_search, Some(&hello)),
        },
        "journey_pg_commits": finite(journey.commits_per_request),
        "journey_pg_commits_by_database": journey.commits_by_database.iter()
            .map(|(name, n)| (name.clone(), serde_json::json!(finite(*n))))
            .collect::<serde_json::Map<_, _>>(),
        "rss_kib": idle.iter().map(|(name, idle_kib)| {
            let peak_kib = peak.iter().find(|(n, _)| n == name).map_or(0, |(_, k)| *k);
            (name.clone(), serde_json::json!({ "idle": idle_kib, "peak": peak_kib }))
        }).collect::<serde_json::Map<_, _>>(),
        "ready_after_restart_ms": ready.iter().map(|(s, d)| ((*s).to_owned(), serde_json::json!(d.as_millis())))
            .collect::<serde_json::Map<_, _>>(),
    });
    let out = bench_output_dir().join("latest.json");
    std::fs::create_dir_all(bench_output_dir()).context("creating the bench output folder")?;
    std::fs::write(&out, serde_json::to_vec_pretty(&json)?).with_context(|| format!("writing {}", out.display()))?;
    println!();
    println!("The table as JSON: {}", out.display());
    println!();
    println!(
        "CPU ms/req: user+system time of the platform's processes (services, gateway) per request; for pgbench, of \
         every postgres process on the machine per transaction (shared machine: an upper bound)."
    );
    Ok(())
}
