//! Partners over TLS (ADR 0014, "Partners over TLS"): a real nats-server, started here on a free port with the
//! configuration `id77-nats-config generate` writes (its library: the NKEY users and the TLS block), a server
//! certificate for 127.0.0.1 and localhost signed by a test CA (made with the `openssl` command, tests/support).
//!
//! - The referral consumer connects with `tls://` and `--nats-ca-file`, as the provider's NKEY user, receives a
//!   referral published as routing publishes it, and answers it: the reply is read back from the stream.
//! - Without the CA (or with another CA) it is refused at once, with an error that says what to do.
//! - A client speaking plain NATS to the TLS-only listener gets nothing through: the server asks for TLS in its
//!   INFO and answers the clear-text CONNECT with an error, then closes.
//! - With `handshake_first` (nats-server 2.10.4+), `--nats-tls-first` connects and answers; a clear-text client
//!   does not even get the server's INFO.
//!
//! The server binary: `NATS_SERVER_BIN`, else the pinned one (`id77_platform::testing::nats_server_bin`), else the
//! first `nats-server` on the PATH.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, message::PublishMessage};
use id77_bus::Namespace;
use id77_nats_config::{Options, SERVER_CONF, Tls, ensure_consumers, generate, provider_user, seed_file_name};
use id77_proto::events::provider::{offered as referral_offered_subject, reply as referral_reply_subject};
use id77_proto::events::streams::REFERRALS;
use id77_proto::routing::v1::{ReferralOffered, ReferralReply, ReplyDecision};
use id77_referral_consumer::{Config, ReferralConsumer, Rule, RuleKind, Summary, run};
use prost::{Message, Name};
use support::{BoxError, Pki, Scratch, TestResult};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PROVIDER: &str = "caue77";

/// The nats-server to start: `NATS_SERVER_BIN`, the project's pinned one, else `nats-server` on the PATH.
fn server_binary() -> Result<PathBuf, BoxError> {
    match id77_platform::testing::nats_server_bin() {
        Ok(bin) => Ok(bin),
        Err(pinned) => {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path).map(|d| d.join("nats-server")).find(|b| b.is_file()).ok_or_else(|| {
                format!("no nats-server: {pinned:#}; nor on the PATH (set NATS_SERVER_BIN or run `make deps`)").into()
            })
        }
    }
}

/// `(major, minor, patch)` of `nats-server --version` ("nats-server: v2.12.8").
fn server_version(bin: &PathBuf) -> Result<(u32, u32, u32), BoxError> {
    let out = Command::new(bin).arg("--version").output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.trim().rsplit(' ').next().unwrap_or_default().trim_start_matches('v');
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    Ok((parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0)))
}

/// A nats-server with the generated configuration and a TLS-only client listener; killed when dropped.
struct TlsServer {
    child: Child,
    dir: Scratch,
    port: u16,
    ns: Namespace,
    ca: PathBuf,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsServer {
    async fn start(pki: &Pki, handshake_first: bool) -> Result<Self, BoxError> {
        let bin = server_binary()?;
        let dir = Scratch(std::env::temp_dir().join(format!("id77-nats-tls-{}", Uuid::new_v4().simple())));
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        let tls = Tls {
            cert_file: pki.path("good.pem"),
            key_file: pki.path("good.key"),
            handshake_first,
            ..Default::default()
        };
        let options = Options::new(listen, &dir.0.join("js"), "", [PROVIDER.to_owned()])?.with_tls(tls)?;
        generate(&dir.0, &options)?;
        let conf = std::fs::read_to_string(dir.0.join(SERVER_CONF))?;
        assert!(conf.contains("tls {") && !conf.contains("allow_non_tls"), "{conf}");
        let log = std::fs::File::create(dir.0.join("server.log"))?;
        let child = Command::new(&bin)
            .arg("-c")
            .arg(dir.0.join(SERVER_CONF))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut server = Self { child, dir, port, ns: Namespace::default(), ca: pki.path("ca.pem") };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> TestResult {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("nats-server exited ({status}) at start:\n{}", self.log()).into());
            }
            if self.log().contains("Server is ready")
                && TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("nats-server did not start on {}:\n{}", self.addr(), self.log()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn tls_url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("server.log")).unwrap_or_default()
    }

    fn seed_file(&self, user: &str) -> PathBuf {
        self.dir.0.join(seed_file_name(user))
    }

    /// Routing's connection (a platform service user), over TLS with the CA; the REFERRALS stream and the
    /// provider's durable consumer made as `id77-nats-config ensure-consumers` makes them.
    async fn routing(&self, tls_first: bool) -> Result<jetstream::Context, BoxError> {
        let mut options = async_nats::ConnectOptions::new()
            .nkey(id77_bus::nats::read_nkey_seed(&self.seed_file("routing"))?)
            .add_root_certificates(self.ca.clone())
            .require_tls(true);
        if tls_first {
            options = options.tls_first();
        }
        let client = options.connect(self.tls_url()).await?;
        let js = jetstream::new(client);
        ensure_consumers(&js, &self.ns, &[PROVIDER.to_owned()]).await?;
        Ok(js)
    }

    /// The consumer's configuration as a partner runs it: `tls://`, its NKEY, creating nothing, one referral.
    fn consumer_config(&self, ca: Option<PathBuf>) -> Result<Config, BoxError> {
        let mut config = Config::new(self.tls_url(), PROVIDER)?;
        config.nkey_file = Some(self.seed_file(&provider_user(PROVIDER)));
        config.nats_ca_file = ca;
        config.ensure_stream = false;
        config.create_consumer = false;
        config.max = Some(1);
        Ok(config)
    }
}

/// Publishes a referral to the provider as routing's outbox relay does. Returns it.
async fn offer(js: &jetstream::Context, ns: &Namespace) -> Result<ReferralOffered, BoxError> {
    let referral = ReferralOffered {
        referral_id: Uuid::now_v7().to_string(),
        request_id: Uuid::now_v7().to_string(),
        offer_id: Uuid::now_v7().to_string(),
        offer_code: "caue-conseil-archi".into(),
        offer_title: "Conseil architectural".into(),
        member_id: Uuid::now_v7().to_string(),
        provider_code: PROVIDER.into(),
        subject: "Réhabilitation de l'école".into(),
        description: "Nous voulons rénover l'école communale.".into(),
        attempt: 1,
        ..Default::default()
    };
    let mut headers = HeaderMap::new();
    headers.insert("Id77-Event-Type", ReferralOffered::full_name().as_str());
    headers.insert("Content-Type", "application/protobuf");
    let publish = PublishMessage::build()
        .payload(referral.encode_to_vec().into())
        .headers(headers)
        .message_id(Uuid::now_v7().to_string());
    js.send_publish(ns.subject(&referral_offered_subject(PROVIDER)), publish).await?.await?;
    Ok(referral)
}

/// The replies stored on the provider's reply subject, as routing reads them.
async fn replies(js: &jetstream::Context, ns: &Namespace) -> Result<Vec<ReferralReply>, BoxError> {
    let stream = js.get_stream(ns.stream(REFERRALS.name)).await?;
    let reader: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: ns.subject(&referral_reply_subject(PROVIDER)),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(10),
            ..Default::default()
        })
        .await?;
    let pending = reader.cached_info().num_pending;
    let mut out = Vec::new();
    if pending == 0 {
        return Ok(out);
    }
    let mut batch =
        reader.batch().max_messages(usize::try_from(pending)?).expires(Duration::from_secs(2)).messages().await?;
    while let Some(message) = futures::StreamExt::next(&mut batch).await {
        out.push(ReferralReply::decode(message?.payload.clone())?);
    }
    Ok(out)
}

/// Runs the consumer until it answered one referral; checks the reply routing reads.
async fn answers_one_referral(server: &TlsServer, config: Config, tls_first: bool) -> TestResult {
    let js = server.routing(tls_first).await?;
    let referral = offer(&js, &server.ns).await?;
    let rule = Rule::new(RuleKind::AcceptAll, None)?;
    let summary = tokio::time::timeout(Duration::from_secs(20), run(config, rule, CancellationToken::new())).await??;
    assert_eq!(summary, Summary { accepted: 1, ..Default::default() });
    let replies = replies(&js, &server.ns).await?;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].referral_id, referral.referral_id);
    assert_eq!(replies[0].decision(), ReplyDecision::Accept);
    Ok(())
}

/// The consumer's start-up error with `config`, which must come at once and speak of TLS and the CA file.
async fn refused(config: Config) -> Result<String, BoxError> {
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), ReferralConsumer::connect(config)).await?;
    let error = match result {
        Ok(_) => return Err("connected where it must be refused".into()),
        Err(error) => format!("{error:#}"),
    };
    eprintln!("refused as expected: {error}");
    assert!(started.elapsed() < Duration::from_secs(8), "refused at once, not after retries: {:?}", started.elapsed());
    assert!(error.contains("TLS with NATS at ") && error.contains("://127.0.0.1:"), "{error}");
    assert!(error.contains("--nats-ca-file"), "{error}");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    Ok(error)
}

/// Speaks plain NATS to the listener: what the server said (its INFO, if any, and what came after the clear-text
/// CONNECT and PING), and whether it closed the connection.
fn plain_client(addr: SocketAddr) -> Result<(String, bool), BoxError> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut said = String::new();
    let mut reader = BufReader::new(stream.try_clone()?);
    // With handshake_first the server says nothing first: a read timeout, then the clear-text CONNECT.
    let mut info = String::new();
    if reader.read_line(&mut info).is_ok() {
        said.push_str(&info);
    }
    let connect = "CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"name\":\"plain\",\
                   \"lang\":\"test\",\"version\":\"0\",\"protocol\":1}\r\nPING\r\n";
    // The server may already have closed: a write error is a refusal too.
    if stream.write_all(connect.as_bytes()).is_err() {
        return Ok((said, true));
    }
    let mut rest = Vec::new();
    let closed = reader.read_to_end(&mut rest).is_ok();
    said.push_str(&String::from_utf8_lossy(&rest));
    Ok((said, closed))
}

#[tokio::test]
async fn a_partner_connects_over_tls_with_the_ca_and_answers_a_referral() -> TestResult {
    let pki = Pki::new()?;
    let server = TlsServer::start(&pki, false).await?;
    let config = server.consumer_config(Some(pki.path("ca.pem")))?;
    assert!(config.requires_tls());
    answers_one_referral(&server, config, false).await?;

    // By name too: the certificate names localhost.
    let js = server.routing(false).await?;
    offer(&js, &server.ns).await?;
    let mut config = server.consumer_config(Some(pki.path("ca.pem")))?;
    config.nats_url = format!("tls://localhost:{}", server.port);
    let rule = Rule::new(RuleKind::AcceptAll, None)?;
    let summary = tokio::time::timeout(Duration::from_secs(20), run(config, rule, CancellationToken::new())).await??;
    assert_eq!(summary.accepted, 1);
    assert_eq!(replies(&js, &server.ns).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn without_the_ca_or_with_another_ca_the_consumer_is_refused_clearly() -> TestResult {
    let pki = Pki::new()?;
    let server = TlsServer::start(&pki, false).await?;
    let error = refused(server.consumer_config(None)?).await?;
    assert!(error.contains("no --nats-ca-file (ID77_NATS_CA_FILE) was given"), "{error}");
    let error = refused(server.consumer_config(Some(pki.path("other-ca.pem")))?).await?;
    assert!(error.contains("other-ca.pem did not sign it"), "{error}");
    // A nats:// URL does not help: the server requires TLS, the client upgrades, and the certificate is checked.
    let mut config = server.consumer_config(None)?;
    config.nats_url = format!("nats://127.0.0.1:{}", server.port);
    refused(config).await?;
    Ok(())
}

#[tokio::test]
async fn a_plain_connection_to_the_tls_only_listener_is_refused() -> TestResult {
    let pki = Pki::new()?;
    let server = TlsServer::start(&pki, false).await?;
    let (said, closed) = plain_client(server.addr())?;
    eprintln!("the server said: {said}");
    // It asks for TLS before anything, takes the clear-text CONNECT for a failed TLS handshake and hangs up.
    assert!(said.starts_with("INFO ") && said.contains("\"tls_required\":true"), "{said}");
    assert_eq!(said.lines().count(), 1, "nothing but the INFO: {said}");
    assert!(closed, "the server closed the connection");
    assert!(server.log().contains("TLS handshake error"), "{}", server.log());
    Ok(())
}

#[tokio::test]
async fn with_handshake_first_the_consumer_starts_with_tls() -> TestResult {
    let bin = server_binary()?;
    let version = server_version(&bin)?;
    if version < (2, 10, 4) {
        eprintln!("SKIPPED: {} is {version:?}; handshake_first needs nats-server 2.10.4 or later", bin.display());
        return Ok(());
    }
    let pki = Pki::new()?;
    let server = TlsServer::start(&pki, true).await?;
    let mut config = server.consumer_config(Some(pki.path("ca.pem")))?;
    config.nats_tls_first = true;
    answers_one_referral(&server, config, true).await?;
    // A clear-text client gets not even the INFO, and nothing it sends is answered.
    let (said, closed) = plain_client(server.addr())?;
    assert!(said.is_empty() && closed, "{said}");
    Ok(())
}
