//! The gateway's client-side balancing: a name resolving to two pods (two real gRPC servers on 127.0.0.2 and
//! 127.0.0.3; the resolver stands in for the cluster DNS of a headless Service) gets calls on both; when one pod
//! leaves the answer, the calls go to the other only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use id77_gateway::balance;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Starts a gRPC health server on `ip`; returns its address and how many calls it served.
async fn pod(ip: &str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind pod");
    let addr = listener.local_addr().expect("pod address");
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let service = tonic::service::interceptor::InterceptedService::new(health, move |request| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(request)
    });
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = Server::builder().add_service(service).serve_with_incoming(incoming).await;
    });
    (addr, calls)
}

async fn check(client: &mut HealthClient<Channel>, times: usize) {
    for _ in 0..times {
        client.check(HealthCheckRequest { service: String::new() }).await.expect("health check");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_spread_over_every_resolved_pod_and_follow_the_answers() {
    let (a, a_calls) = pod("127.0.0.2").await;
    let (b, b_calls) = pod("127.0.0.3").await;
    let answer = Arc::new(Mutex::new(vec![a, b]));
    let resolver = {
        let answer = answer.clone();
        move |host: String, port: u16| {
            assert_eq!((host.as_str(), port), ("routing-headless", 7054));
            let addrs = answer.lock().map(|a| a.clone()).unwrap_or_default();
            async move { Ok(addrs) }
        }
    };
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(16);
    tokio::spawn(balance::follow(
        "routing",
        "routing-headless".to_owned(),
        7054,
        changes,
        Duration::from_millis(50),
        resolver,
        |addr| Endpoint::from_shared(format!("http://{addr}")).ok(),
    ));
    let mut client = HealthClient::new(channel);

    check(&mut client, 40).await;
    let (on_a, on_b) = (a_calls.load(Ordering::SeqCst), b_calls.load(Ordering::SeqCst));
    assert_eq!(on_a + on_b, 40);
    assert!(on_a > 0 && on_b > 0, "both pods get calls: {on_a} + {on_b}");

    // Pod b leaves the DNS answer (scaled down, or not ready): after the next resolution it gets nothing.
    if let Ok(mut answer) = answer.lock() {
        *answer = vec![a];
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = b_calls.load(Ordering::SeqCst);
    check(&mut client, 20).await;
    assert_eq!(b_calls.load(Ordering::SeqCst), before, "a removed pod gets no call");

    // An empty answer (a DNS hiccup) keeps the last known pods.
    if let Ok(mut answer) = answer.lock() {
        answer.clear();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(5), check(&mut client, 5)).await.expect("calls still served");
}
