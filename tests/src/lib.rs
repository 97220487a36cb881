//! Harness for end-to-end tests: starts every service binary as its own process, with its own database and
//! a subject prefix of its own, and stops them all when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use id77_platform::testing;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Password of the demo accounts membership creates for the tests (`ID77_DEMO_PASSWORD`).
pub const DEMO_PASSWORD: &str = "Essai-ID77-2026!";
/// Password the tests give invited users.
pub const USER_PASSWORD: &str = "Mot2passe-Solide!";

/// The services, with the env var the gateway reads their address from.
const SERVICES: &[(&str, &str)] = &[
    ("membership", "ID77_MEMBERSHIP_URL"),
    ("catalogue", "ID77_CATALOGUE_URL"),
    ("requests", "ID77_REQUESTS_URL"),
    ("routing", "ID77_ROUTING_URL"),
    ("billing", "ID77_BILLING_URL"),
];

/// How to start the platform: [`Options::default`] is one process per service.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Processes of a service (default 1): its replicas share its database and the NATS prefix, each with its
    /// own gRPC and metrics port; the gateway is given the first one's address.
    pub replicas: Vec<(&'static str, usize)>,
    /// Extra environment of every process (services, gateway, referral consumers), e.g. OTLP settings.
    pub env: Vec<(String, String)>,
    /// NATS URL for the services (default: the machine's, `ID77_NATS_URL` or 127.0.0.1:4222), e.g. a private
    /// [`NatsServer`] a test stops and starts.
    pub nats_url: Option<String>,
    /// Extra environment of the gateway (e.g. `ID77_RATE_LIMIT_PER_MINUTE=0`, `ID77_UPSTREAM_TIMEOUT_MS`).
    pub gateway_env: Vec<(String, String)>,
    /// Extra environment of one service's processes: (service, variable, value).
    pub service_env: Vec<(String, String, String)>,
}

impl Options {
    /// Runs `count` processes of `service`.
    pub fn replicas(mut self, service: &'static str, count: usize) -> Self {
        self.replicas.push((service, count));
        self
    }

    /// Sets an environment variable of every process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    fn count(&self, service: &str) -> usize {
        self.replicas.iter().rev().find(|(s, _)| *s == service).map_or(1, |(_, n)| (*n).max(1))
    }
}

/// A running platform.
pub struct Platform {
    pub gateway: String,
    pub prefix: String,
    /// The NATS server the services use (the machine's, or a private one: [`Options::nats_url`]).
    pub nats_url: String,
    children: Vec<(String, Child)>,
    /// How each process was started, to start it again after a kill ([`Platform::restart`]).
    recipes: Vec<(String, Recipe)>,
    databases: Vec<(String, String)>,
    pub logs: PathBuf,
    /// Each process's metrics endpoint (`http://127.0.0.1:<port>/metrics`), by process name (`routing`,
    /// `routing-2`, `gateway`...).
    pub metrics: Vec<(String, String)>,
    env: Vec<(String, String)>,
    /// The SMTP server requests and membership send their mails to (a real one, in this test process).
    pub mail: testing::SmtpSink,
    /// The services' gRPC addresses, by the variable that names them (`ID77_REQUESTS_URL`...).
    pub upstreams: Vec<(String, String)>,
    /// Whether [`Platform::stop`] runs the reconciler first and fails the test on a finding (default: yes).
    pub reconcile_at_stop: bool,
}

/// What `id77-admin reconcile` said: its exit code (0 consistent, 1 findings, 2 a service unreadable) and output.
#[derive(Debug, Clone)]
pub struct Reconciliation {
    pub code: i32,
    pub output: String,
}

impl Reconciliation {
    pub fn is_consistent(&self) -> bool {
        self.code == 0
    }
}

/// The portal base URL the mails link to in the tests.
pub const PORTAL_URL: &str = "https://portail.id77.test";

/// A process's program, environment and arguments.
#[derive(Debug, Clone)]
struct Recipe {
    program: PathBuf,
    envs: Vec<(String, String)>,
    args: Vec<String>,
}

impl Recipe {
    fn new(program: PathBuf) -> Self {
        Self { program, envs: Vec::new(), args: Vec::new() }
    }

    fn env(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.envs.push((key.to_owned(), value.into()));
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).args(&self.args);
        cmd
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The folder cargo builds into, found from this executable's own path, so right whatever CARGO_TARGET_DIR,
/// `build.target-dir` or a tool such as nextest says: tests run from `<target>/<profile>/deps/`, the benchmark's
/// binaries from `<target>/<profile>/` (cargo keeps `.fingerprint/` in every profile folder). Only an executable
/// elsewhere falls back to CARGO_TARGET_DIR (relative: to the workspace, where make runs cargo), then `./target`.
fn target_dir() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?;
        let profile = if dir.file_name()? == "deps" { dir.parent()? } else { dir };
        let target = profile.parent()?;
        profile.join(".fingerprint").is_dir().then(|| target.to_path_buf())
    });
    from_exe.unwrap_or_else(|| {
        let root = workspace_root();
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir))
    })
}

/// Path of a workspace binary, building the binaries first if it is missing.
/// `ID77_E2E_PROFILE=release` runs the release binaries (the benchmark's choice; tests use the debug ones).
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let release = std::env::var("ID77_E2E_PROFILE").is_ok_and(|p| p == "release");
    let path = target_dir().join(if release { "release" } else { "debug" }).join(name);
    if !path.exists() {
        let mut args = vec!["build", "--workspace", "--bins"];
        if release {
            args.push("--release");
        }
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(&args)
            .arg("--target-dir")
            .arg(target_dir())
            .current_dir(workspace_root())
            .status()
            .context("running cargo build --bins")?;
        if !status.success() || !path.exists() {
            bail!("binary {} missing and could not be built", path.display());
        }
    }
    Ok(path)
}

/// The folder with `communes.json` and `epci.json` (fetched by `make test` / `make run`).
pub fn directory_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("ID77_DIRECTORY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/decoupage-administratif/data"));
    if !dir.join("communes.json").exists() {
        bail!("{} has no communes.json: run `make test` (it fetches @etalab/decoupage-administratif)", dir.display());
    }
    Ok(dir)
}

/// The provider codes of the demo catalogue.
pub fn provider_codes() -> anyhow::Result<Vec<String>> {
    let seed = std::fs::read(workspace_root().join("services/catalogue/seed/catalogue.json"))?;
    let seed: Value = serde_json::from_slice(&seed)?;
    Ok(seed["providers"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["code"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default())
}

/// A port that is free now, drawn below Linux's ephemeral range (32768–60999). A port the kernel hands out with
/// `bind(0)` comes from that range, where any outgoing connection (to PostgreSQL, to NATS) may take it before
/// the service binds it: CI saw membership fail with « Address already in use » on its metrics port.
/// How a failed start says a process found its port taken.
const PORT_TAKEN: &str = "its port was taken";

fn free_port() -> anyhow::Result<u16> {
    free_port_from(16_384, 16_000)
}

/// A free port for a server that a test stops and starts again on the same port (the private nats-servers and
/// the cluster's nodes), drawn from 10000–16383, a range no other process of the tests is given: while the server
/// is down, a process of a parallel test started on its port would meet its clients instead of the restarted
/// server (CI: no service reconnected to a restarted nats-server in 60 s, each seeing I/O errors).
pub(crate) fn restartable_port() -> anyhow::Result<u16> {
    free_port_from(10_000, 6_384)
}

/// A port free now among `count` from `first`, at random (bind(0) as a last resort).
fn free_port_from(first: u16, count: u16) -> anyhow::Result<u16> {
    use std::hash::{BuildHasher, Hasher};
    for _ in 0..200 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        // RandomState's keys differ on every call (seeded per thread, then incremented); the clock adds to it.
        hasher.write_u128(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
        );
        let port = first + (hasher.finish() % u64::from(count)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Platform {
    /// Starts the five services and the gateway, and waits until the gateway reports ready.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(Options::default()).await
    }

    /// Starts the platform as `options` say, and waits until the gateway reports ready. A start that failed
    /// because a port was taken between its choice and its use (another test's process) is tried again with
    /// new ports, twice at most.
    pub async fn start_with(options: Options) -> anyhow::Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once(options.clone()).await {
                Err(error) if attempt < 3 && format!("{error:#}").contains(PORT_TAKEN) => {
                    eprintln!("platform start {attempt} lost a port race; starting again: {error:#}");
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn start_once(options: Options) -> anyhow::Result<Self> {
        let prefix = testing::fresh_prefix();
        let logs = target_dir().join("e2e-logs").join(&prefix);
        std::fs::create_dir_all(&logs)?;
        let nats_url = options.nats_url.clone().unwrap_or_else(testing::nats_url);
        let mail = testing::SmtpSink::start().await.context("starting the SMTP sink")?;
        let mut platform = Self {
            gateway: String::new(),
            prefix: prefix.clone(),
            nats_url: nats_url.clone(),
            children: Vec::new(),
            recipes: Vec::new(),
            databases: Vec::new(),
            logs,
            metrics: Vec::new(),
            env: options.env.clone(),
            mail,
            upstreams: Vec::new(),
            reconcile_at_stop: true,
        };
        let mut upstreams: Vec<(&str, String)> = Vec::new();
        for (service, url_var) in SERVICES {
            let db = testing::fresh_database_url(service);
            platform.databases.push(((*service).to_owned(), db.clone()));
            let mut first_port = None;
            for replica in 1..=options.count(service) {
                let port = free_port()?;
                first_port.get_or_insert(port);
                let mut cmd = Recipe::new(binary(&format!("id77-{service}"))?);
                cmd.env("ID77_DATABASE_URL", &db)
                    .env("ID77_NATS_URL", &nats_url)
                    .env("ID77_NATS_PREFIX", &prefix)
                    .env("ID77_GRPC_ADDR", format!("127.0.0.1:{port}"))
                    .env("ID77_DB_MAX_CONNECTIONS", "5");
                if *service == "membership" {
                    cmd.env("ID77_DIRECTORY_DIR", directory_dir()?.to_string_lossy())
                        .env("ID77_DEMO_PASSWORD", DEMO_PASSWORD)
                        .env("ID77_DEMO_PROVIDERS", provider_codes()?.join(","));
                } else if let Some((_, membership)) = upstreams.first() {
                    cmd.env("ID77_MEMBERSHIP_URL", membership.as_str());
                }
                // Requests (notifications) and membership (invitations, password resets) send mails.
                if *service == "requests" || *service == "membership" {
                    cmd.env("ID77_SMTP_URL", platform.mail.url()).env("ID77_PORTAL_URL", PORTAL_URL);
                }
                if *service == "routing" {
                    // Test only: routing's clock is offset by the seconds written in this file (`advance_clock`).
                    cmd.env("ID77_TEST_CLOCK_FILE", platform.clock_file().to_string_lossy())
                        .env("ID77_ROUTING_TIMER_INTERVAL_MS", "200");
                }
                for (_, key, value) in options.service_env.iter().filter(|(s, _, _)| s == service) {
                    cmd.env(key, value.as_str());
                }
                let name = if replica == 1 { (*service).to_owned() } else { format!("{service}-{replica}") };
                platform.spawn_with_metrics(&name, cmd)?;
            }
            let port = first_port.context("no process")?;
            upstreams.push((*url_var, format!("http://127.0.0.1:{port}")));
        }
        let http_port = free_port()?;
        let mut gateway = Recipe::new(binary("id77-gateway")?);
        // Every test logs in a handful of users from one address: keep the login limit out of the way.
        gateway.env("ID77_HTTP_ADDR", format!("127.0.0.1:{http_port}")).env("ID77_AUTH_RATE_LIMIT_PER_MINUTE", "200");
        // Live updates (`GET /v1/events`): the same NATS and prefix as the services.
        gateway.env("ID77_NATS_URL", nats_url.as_str()).env("ID77_NATS_PREFIX", prefix.as_str());
        for (var, url) in &upstreams {
            gateway.env(var, url.as_str());
        }
        // `GET /v1/operations` reads each service's outbox backlog from its metrics endpoint (every replica's).
        let metrics: Vec<String> = platform
            .metrics
            .iter()
            .map(|(name, url)| (name.split_once('-').map_or(name.as_str(), |(service, _)| service), url))
            .map(|(service, url)| format!("{service}={url}"))
            .collect();
        gateway.env("ID77_OPERATIONS_METRICS", metrics.join(","));
        for (key, value) in &options.gateway_env {
            gateway.env(key, value.as_str());
        }
        platform.upstreams = upstreams.iter().map(|(var, url)| ((*var).to_owned(), url.clone())).collect();
        platform.spawn_with_metrics("gateway", gateway)?;
        platform.gateway = format!("http://127.0.0.1:{http_port}");
        platform.wait_ready(Duration::from_secs(60)).await?;
        Ok(platform)
    }

    /// Spawns a process with a metrics port of its own.
    fn spawn_with_metrics(&mut self, name: &str, mut cmd: Recipe) -> anyhow::Result<()> {
        let port = free_port()?;
        cmd.env("ID77_METRICS_ADDR", format!("127.0.0.1:{port}"));
        self.metrics.push((name.to_owned(), format!("http://127.0.0.1:{port}/metrics")));
        self.spawn(name, cmd)
    }

    fn spawn(&mut self, name: &str, recipe: Recipe) -> anyhow::Result<()> {
        let mut cmd = recipe.command();
        self.recipes.retain(|(n, _)| n != name);
        self.recipes.push((name.to_owned(), recipe));
        // Appended: a restarted process keeps the log of its previous life.
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.logs.join(format!("{name}.log")))?;
        cmd.env("ID77_LOG", "info").envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        self.children.retain(|(n, _)| n != name);
        self.children.push((name.to_owned(), child));
        Ok(())
    }

    /// The database URL of a service (`membership`, `catalogue`, `requests`, `routing`, `billing`).
    pub fn database_url(&self, service: &str) -> Option<&str> {
        self.databases.iter().find(|(s, _)| s == service).map(|(_, url)| url.as_str())
    }

    /// The names of the processes started (the services, `gateway`, `referral-consumer-<provider>`).
    pub fn process_names(&self) -> Vec<String> {
        self.recipes.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The operating system's id of a running process.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.children.iter().find(|(n, _)| n == name).map(|(_, c)| c.id())
    }

    /// Whether the process is still running (false once it exited or was killed).
    pub fn is_running(&mut self, name: &str) -> bool {
        self.children.iter_mut().find(|(n, _)| n == name).is_some_and(|(_, c)| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills a process with SIGKILL (no graceful shutdown) and reaps it.
    pub fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let (_, child) =
            self.children.iter_mut().find(|(n, _)| n == name).with_context(|| format!("no process {name}"))?;
        child.kill().with_context(|| format!("killing {name}"))?;
        child.wait().with_context(|| format!("reaping {name}"))?;
        Ok(())
    }

    /// Sets an environment variable of a process for its next start ([`Platform::restart`]).
    pub fn set_env(&mut self, name: &str, key: &str, value: &str) -> anyhow::Result<()> {
        let (_, recipe) =
            self.recipes.iter_mut().find(|(n, _)| n == name).with_context(|| format!("no process {name}"))?;
        recipe.envs.retain(|(k, _)| k != key);
        recipe.env(key, value);
        Ok(())
    }

    /// Starts a process again as it was first started (after [`Platform::kill`] or a crash).
    pub fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        anyhow::ensure!(!self.is_running(name), "{name} is still running");
        let recipe = self
            .recipes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.clone())
            .with_context(|| format!("no {name}"))?;
        self.spawn(name, recipe)
    }

    /// The file that offsets routing's clock (test only).
    pub fn clock_file(&self) -> PathBuf {
        self.logs.join("routing-clock-offset")
    }

    /// Sets routing's clock to the real time plus `offset` (SLA timers then fire as if that time had come).
    pub fn set_clock_offset(&self, offset: Duration) -> anyhow::Result<()> {
        std::fs::write(self.clock_file(), offset.as_secs().to_string())?;
        Ok(())
    }

    /// Starts a provider's referral consumer (the real CLI) with the given extra arguments.
    pub fn start_referral_consumer(&mut self, provider: &str, args: &[&str]) -> anyhow::Result<()> {
        let mut cmd = Recipe::new(binary("id77-referral-consumer")?);
        cmd.env("ID77_NATS_URL", self.nats_url.as_str()).env("ID77_NATS_PREFIX", self.prefix.as_str());
        cmd.args = ["--provider", provider].iter().chain(args).map(|a| (*a).to_owned()).collect();
        self.spawn(&format!("referral-consumer-{provider}"), cmd)
    }

    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            for (name, child) in &mut self.children {
                if let Some(status) = child.try_wait()? {
                    let log = self.logs.join(format!("{name}.log"));
                    let port_taken = std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Address already in use"));
                    bail!(
                        "{name} exited early ({status}){}; see {}",
                        if port_taken { format!(": {PORT_TAKEN}") } else { String::new() },
                        log.display()
                    );
                }
            }
            let ready = client.get(format!("{}/readyz", self.gateway)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if started.elapsed() > timeout {
                bail!("platform not ready after {timeout:?}; logs in {}", self.logs.display());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops every process (SIGTERM, then SIGKILL) and drops the databases and streams.
    /// Runs `id77-admin reconcile` against this platform's services, as the demo coordinator, with `settle`
    /// seconds for in-flight events to land before a finding counts.
    pub async fn reconcile_with(&self, settle: u64, extra: &[&str]) -> anyhow::Result<Reconciliation> {
        let mut cmd = tokio::process::Command::new(binary("id77-admin")?);
        cmd.arg("reconcile")
            .args(extra)
            .env("ID77_ADMIN_EMAIL", "coordination@id77.demo")
            .env("ID77_ADMIN_PASSWORD", DEMO_PASSWORD)
            .env("ID77_ADMIN_SETTLE_SECS", settle.to_string())
            .envs(self.upstreams.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .context("the reconciler did not finish within 120 s")?
            .context("running id77-admin")?;
        let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        Ok(Reconciliation { code: out.status.code().unwrap_or(-1), output })
    }

    /// The reconciler with the default settle time (10 s): `Err` unless every service tells the same story.
    pub async fn reconcile(&self) -> anyhow::Result<()> {
        let r = self.reconcile_with(10, &[]).await?;
        eprintln!("{}", r.output.trim_end());
        if !r.is_consistent() {
            bail!("the reconciler exited with {}:\n{}", r.code, r.output);
        }
        Ok(())
    }

    /// Stops every process and drops the databases and streams. First, unless [`Platform::reconcile_at_stop`] is
    /// off or a process is down, runs the reconciler, and fails the test if the services disagree (ADR 0013).
    pub async fn stop(mut self) {
        let names = self.process_names();
        let all_running = names.iter().all(|n| self.is_running(n));
        let verdict = if self.reconcile_at_stop && all_running { Some(self.reconcile().await) } else { None };
        self.terminate();
        for (_, db) in &self.databases {
            testing::drop_database(db).await;
        }
        if let Ok((_, js)) = id77_platform::nats::connect(&self.nats_url, "e2e-cleanup").await {
            testing::delete_streams(&js, &id77_platform::Namespace::new(self.prefix.clone())).await;
        }
        if let Some(Err(e)) = verdict {
            panic!("reconciliation at the end of the test: {e:#}");
        }
    }

    fn terminate(&mut self) {
        for (_, child) in &mut self.children {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (name, child) in &mut self.children {
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !matches!(child.try_wait(), Ok(Some(_))) {
                eprintln!("{name} did not stop on SIGTERM; killing");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.children.clear();
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A small client of the gateway's REST API.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// A status and a JSON body (Null when the body is empty or not JSON).
pub type Answer = (StatusCode, Value);

impl Api {
    pub fn new(base: &str) -> Self {
        Self { base: base.to_owned(), http: reqwest::Client::new() }
    }

    /// Sends a request, with a bearer token when given.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                (status, response.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(error) => (StatusCode::BAD_GATEWAY, json!({ "error": error.to_string() })),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Posts a file as a raw body (an attachment upload: `Content-Type` and `X-Filename`).
    pub async fn upload(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        filename: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("x-filename", filename)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                (status, response.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(error) => (StatusCode::BAD_GATEWAY, json!({ "error": error.to_string() })),
        }
    }

    /// Logs in and returns the token pair.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<Value> {
        let (status, body) = self.post("/v1/auth/token", None, &json!({"email": email, "password": password})).await;
        if status != StatusCode::OK {
            bail!("login of {email} failed: {status} {body}");
        }
        Ok(body)
    }

    /// Logs in and returns the access token.
    pub async fn access_token(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let pair = self.login(email, password).await?;
        pair["access_token"].as_str().map(str::to_owned).context("no access_token")
    }

    /// Invites a user (as `inviter`) and accepts the invitation; returns the new user's access token and id.
    pub async fn invite_and_accept(&self, inviter: &str, invite: &Value) -> anyhow::Result<(String, String)> {
        let (status, invitation) = self.post("/v1/users", Some(inviter), invite).await;
        if status != StatusCode::CREATED {
            bail!("invitation failed: {status} {invitation}");
        }
        let user_id = invitation["user"]["id"].as_str().context("user id")?.to_owned();
        let token = invitation["invitation_token"].as_str().context("invitation_token")?;
        let (status, pair) = self
            .post("/v1/auth/invitations/accept", None, &json!({"invitation_token": token, "password": USER_PASSWORD}))
            .await;
        if status != StatusCode::OK {
            bail!("accepting the invitation failed: {status} {pair}");
        }
        Ok((pair["access_token"].as_str().context("access_token")?.to_owned(), user_id))
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: String,
    /// The `data:` as JSON (Null when it is not JSON).
    pub data: Value,
}

/// A client's `GET /v1/events` stream, read as it comes.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl Api {
    /// Opens the caller's live updates; fails unless the gateway answers 200 `text/event-stream`.
    pub async fn events(&self, token: &str) -> anyhow::Result<EventStream> {
        let response = self
            .http
            .get(format!("{}/v1/events", self.base))
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .context("opening /v1/events")?;
        let status = response.status();
        let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        if status != StatusCode::OK || !kind.starts_with("text/event-stream") {
            bail!("/v1/events answered {status} {kind}: {}", response.text().await.unwrap_or_default());
        }
        Ok(EventStream { response, buffer: String::new() })
    }
}

impl EventStream {
    /// The next event (comments skipped), or None when none came within `limit` or the stream ended.
    pub async fn next(&mut self, limit: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent { event: "message".to_owned(), id: String::new(), data: Value::Null };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        event.id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue; // a comment (keep-alive) or a retry hint
                }
                event.data = serde_json::from_str(&data).unwrap_or(Value::Null);
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await.ok()?.ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        }
    }

    /// Reads events until one matches `wanted` (returned) or `limit` passes (None); the others are returned in
    /// `seen`.
    pub async fn wait_for(
        &mut self,
        limit: Duration,
        seen: &mut Vec<SseEvent>,
        wanted: impl Fn(&SseEvent) -> bool,
    ) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left).await?;
            if wanted(&event) {
                return Some(event);
            }
            seen.push(event);
        }
    }

    /// Every event that arrives within `limit`.
    pub async fn drain(&mut self, limit: Duration) -> Vec<SseEvent> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut events = Vec::new();
        while let Some(event) = self.next(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
            events.push(event);
        }
        events
    }
}

/// The metrics endpoint of a process of the platform.
pub fn metrics_url<'a>(platform: &'a Platform, process: &str) -> anyhow::Result<&'a str> {
    platform
        .metrics
        .iter()
        .find(|(name, _)| name == process)
        .map(|(_, url)| url.as_str())
        .with_context(|| format!("no process {process}"))
}

/// Fetches a metrics page (OpenMetrics text).
pub async fn scrape(url: &str) -> anyhow::Result<String> {
    let response = reqwest::get(url).await.with_context(|| format!("scraping {url}"))?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    Ok(response.text().await?)
}

/// The sum of the samples of series `name` whose labels include every pair of `labels` (0 when none).
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if series_name != name {
                return None;
            }
            let all = labels.iter().all(|(k, v)| rest.split(',').any(|pair| pair == format!("{k}=\"{v}\"")));
            if all { value.parse::<f64>().ok() } else { None }
        })
        .sum()
}

/// Applies for membership with `siren`, has the coordinator approve it and invite its first admin; returns the
/// member id and the admin's access token.
pub async fn onboard_member(
    api: &Api,
    coordinator: &str,
    siren: &str,
    email: &str,
) -> anyhow::Result<(String, String)> {
    let apply = json!({"siren": siren, "contact_name": "Secrétariat général", "contact_email": email});
    let (status, member) = api.post("/v1/memberships", None, &apply).await;
    if status != StatusCode::CREATED {
        bail!("membership application failed: {status} {member}");
    }
    let member_id = member["id"].as_str().context("member id")?.to_owned();
    let (status, approved) =
        api.post(&format!("/v1/memberships/{member_id}/approve"), Some(coordinator), &json!({})).await;
    if status != StatusCode::OK {
        bail!("approval failed: {status} {approved}");
    }
    let invite =
        json!({"email": email, "display_name": "Administrateur", "role": "member_admin", "member_id": member_id});
    let (token, _) = api.invite_and_accept(coordinator, &invite).await?;
    Ok((member_id, token))
}

/// Polls `probe` until it returns `Some`, for at most `limit`; panics with `what` after that.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A private nats-server with JetStream on a free port and its own store directory, that a test can stop and
/// start again (the machine's NATS on 4222 is shared and must never be restarted).
pub struct NatsServer {
    pub url: String,
    port: u16,
    store: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts `nats-server -js` on a free port, storing JetStream's files under `dir`.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let port = restartable_port()?;
        std::fs::create_dir_all(dir)?;
        let mut server = Self {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store: dir.join("jetstream"),
            log: dir.join("nats-server.log"),
            child: None,
        };
        server.start_again().await?;
        Ok(server)
    }

    /// Starts the server again (same port, same store) and waits until it accepts connections.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "nats-server is already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(testing::nats_server_bin()?)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting nats-server (the pinned one: make deps installs it, deploy/local/nats-server.sh)")?;
        self.child = Some(child);
        let started = Instant::now();
        while !says_info(self.port).await {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(15), "nats-server did not listen on {}", self.port);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // What answers must be this server: one that could not bind its port (taken meanwhile) has exited.
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            self.child = None;
            anyhow::bail!("nats-server exited ({status}) on port {}: see {}", self.port, self.log.display());
        }
        Ok(())
    }

    /// Stops the server (SIGTERM: JetStream flushes its files; clients see the connection drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// Whether what listens on `port` greets like a NATS server (`INFO {…}`), within a second.
async fn says_info(port: u16) -> bool {
    use tokio::io::AsyncReadExt;
    let greeting = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let mut first = [0u8; 5];
        stream.read_exact(&mut first).await.ok()?;
        Some(&first == b"INFO ")
    };
    matches!(tokio::time::timeout(Duration::from_secs(1), greeting).await, Ok(Some(true)))
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// Refuses every new connection to the database of `url` and closes the open ones
/// (`ALTER DATABASE ... ALLOW_CONNECTIONS false` + `pg_terminate_backend`), as if PostgreSQL were unreachable
/// for that service; [`allow_database`] lets it in again.
pub async fn block_database(url: &str) -> anyhow::Result<()> {
    let (mut admin, name) = admin_connection(url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false")))
        .execute(&mut admin)
        .await?;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&name)
    .execute(&mut admin)
    .await?;
    Ok(())
}

/// Undoes [`block_database`].
pub async fn allow_database(url: &str) -> anyhow::Result<()> {
    let (mut admin, name) = admin_connection(url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")))
        .execute(&mut admin)
        .await?;
    Ok(())
}

async fn admin_connection(url: &str) -> anyhow::Result<(sqlx::PgConnection, String)> {
    use sqlx::{ConnectOptions, postgres::PgConnectOptions};
    let options: PgConnectOptions = url.parse().with_context(|| format!("database URL {url}"))?;
    let name = options.get_database().context("no database name")?.to_owned();
    anyhow::ensure!(name.starts_with(testing::TEST_DB_PREFIX), "{name} is not a test database");
    let admin = options.database("postgres").disable_statement_logging().connect().await?;
    Ok((admin, name))
}

pub mod cluster;
pub mod load;

/// The member's agreement to a billed request's quote (ADR 0013): waits (30 s at most) until the request's quote,
/// read by the member's admin `admin`, is `proposed`, accepts it as that admin (signatory « Le maire », no
/// purchase order number) and returns the accepted quote, once routing shows the request's current referral
/// `agreed` to `reader` (a coordinator, or an agent of the referral's provider): the provider may then report
/// progress and complete the work.
pub async fn accept_quote(api: &Api, admin: &str, reader: &str, request_id: &str) -> anyhow::Result<Value> {
    const LIMIT: Duration = Duration::from_secs(30);
    let started = Instant::now();
    let quotes = format!("/v1/quotes?request_id={request_id}");
    let quote = loop {
        let (status, page) = api.get(&quotes, Some(admin)).await;
        let proposed = page["items"].as_array().and_then(|q| q.iter().find(|q| q["status"] == "proposed").cloned());
        match proposed {
            Some(quote) if status == StatusCode::OK => break quote,
            _ if started.elapsed() > LIMIT => bail!("no proposed quote for request {request_id}: {status} {page}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let id = quote["id"].as_str().context("quote id")?;
    let (status, accepted) =
        api.post(&format!("/v1/quotes/{id}/accept"), Some(admin), &json!({"signatory_name": "Le maire"})).await;
    if status != StatusCode::OK || accepted["status"] != "accepted" {
        bail!("accepting quote {id} of request {request_id}: {status} {accepted}");
    }
    let referrals = format!("/v1/referrals?request_id={request_id}");
    loop {
        let (status, page) = api.get(&referrals, Some(reader)).await;
        // The request's current referral: the accepted one of the latest attempt.
        let current = page["items"]
            .as_array()
            .and_then(|r| r.iter().filter(|r| r["status"] == "accepted").max_by_key(|r| r["attempt"].as_i64()));
        if status == StatusCode::OK && current.is_some_and(|r| r["agreement"] == "agreed") {
            return Ok(accepted);
        }
        if started.elapsed() > LIMIT {
            bail!("the referral of request {request_id} is not agreed after its quote was accepted: {status} {page}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What became of a process sent SIGTERM ([`Platform::terminate_timed`]).
#[derive(Debug, Clone)]
pub struct Stopped {
    pub name: String,
    /// How long it took to exit after the signal; `None`: still running at the limit (then killed).
    pub took: Option<Duration>,
    /// Its exit status (`None`: killed at the limit, or no status).
    pub status: Option<std::process::ExitStatus>,
}

/// Stops under a time limit, and the addresses the probes ask (issue 16: bounded stops, liveness apart from
/// readiness).
impl Platform {
    /// Sends SIGTERM to each of `names` at once and waits at most `limit` for them to exit; a process still
    /// running then is killed (SIGKILL). The processes are reaped and forgotten ([`Platform::restart`] starts
    /// them again).
    pub async fn terminate_timed(&mut self, names: &[String], limit: Duration) -> Vec<Stopped> {
        let started = Instant::now();
        for name in names {
            if let Some(pid) = self.pid(name) {
                let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            }
        }
        let mut stopped: Vec<Stopped> =
            names.iter().map(|name| Stopped { name: name.clone(), took: None, status: None }).collect();
        loop {
            for entry in stopped.iter_mut().filter(|s| s.took.is_none()) {
                match self.children.iter_mut().find(|(n, _)| *n == entry.name) {
                    Some((_, child)) => {
                        if let Ok(Some(status)) = child.try_wait() {
                            entry.took = Some(started.elapsed());
                            entry.status = Some(status);
                        }
                    }
                    None => entry.took = Some(Duration::ZERO),
                }
            }
            if stopped.iter().all(|s| s.took.is_some()) || started.elapsed() > limit {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for entry in stopped.iter().filter(|s| s.took.is_none()) {
            if let Some((_, child)) = self.children.iter_mut().find(|(n, _)| *n == entry.name) {
                eprintln!("{} did not stop within {limit:?} of SIGTERM; killing", entry.name);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.children.retain(|(n, _)| !names.contains(n));
        stopped
    }

    /// The gRPC base URL (`http://127.0.0.1:<port>`) of a service process (`routing`, `routing-2`...).
    pub fn grpc_url(&self, name: &str) -> Option<String> {
        let (_, recipe) = self.recipes.iter().find(|(n, _)| n == name)?;
        recipe.envs.iter().rev().find(|(k, _)| k == "ID77_GRPC_ADDR").map(|(_, addr)| format!("http://{addr}"))
    }

    /// Starts a provider's referral consumer, as [`Platform::start_referral_consumer`], with its health endpoint
    /// (`--health-addr`) on a free port; returns that endpoint's base URL (`http://127.0.0.1:<port>`).
    pub fn start_referral_consumer_with_health(&mut self, provider: &str, args: &[&str]) -> anyhow::Result<String> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let args: Vec<&str> = args.iter().copied().chain(["--health-addr", addr.as_str()]).collect();
        self.start_referral_consumer(provider, &args)?;
        Ok(format!("http://{addr}"))
    }
}
