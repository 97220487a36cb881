//! The platform on a three-node NATS cluster (issue 17): three nats-servers on loopback as one JetStream cluster
//! (file storage, `sync_interval: always`, the NKEY users `id77-nats-config generate` writes), the services given
//! every node's URL, their own NKEY seed and `ID77_STREAM_REPLICAS=3`. Every stream of the platform then has
//! three replicas (a leader and two followers), the providers' durable consumers too, and a request's journey
//! through the gateway passes: a commune joins, submits a request for a billed offer, the provider's consumer
//! (its own NKEY, its durable consumer created beforehand as production does) accepts it, the quote is proposed
//! and the member's admin accepts it.
//!
//! The chaos suite's cluster mode (tests/tests/chaos.rs) loses nodes under load on the same cluster.

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use id77_e2e::cluster::NatsCluster;
use id77_e2e::{Api, Options, accept_quote, eventually, load, onboard_member};
use id77_platform::Namespace;
use id77_platform::streams::{BILLING, CATALOGUE, MEMBERSHIP, REFERRALS, REQUESTS, ROUTING};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The streams every platform has once it started (DEADLETTER only once something is dead-lettered).
const STREAMS: [&str; 6] = [MEMBERSHIP.name, CATALOGUE.name, REQUESTS.name, ROUTING.name, BILLING.name, REFERRALS.name];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_passes_on_a_three_node_cluster_with_three_replicas() {
    let cluster = NatsCluster::start().await.expect("the NATS cluster starts");
    let mut platform = cluster.start_platform(Options::default()).await.expect("the platform starts on the cluster");
    let api = Api::new(&platform.gateway);
    let ns = Namespace::new(cluster.prefix.clone());
    let (_client, js) = cluster.connect("routing").await.expect("a service user connects to the cluster");

    // Every stream has three replicas: the leader and two current followers, on the three nodes.
    for logical in STREAMS {
        let name = ns.stream(logical);
        // A stream just created may still be electing its leader: wait for the election, not only the stream.
        let info = eventually(&format!("stream {name} with a leader"), Duration::from_secs(30), || async {
            let info = js.get_stream(&name).await.ok()?.info().await.ok().cloned()?;
            info.cluster.as_ref().and_then(|c| c.leader.as_ref()).is_some_and(|l| !l.is_empty()).then_some(info)
        })
        .await;
        assert_eq!(
            info.config.num_replicas, 3,
            "stream {name} has {} replica(s) on a three-node cluster with ID77_STREAM_REPLICAS=3: the services do not \
             apply ID77_STREAM_REPLICAS (issue 17, item 1: stream replicas from configuration)",
            info.config.num_replicas
        );
        let placement = info.cluster.clone().unwrap_or_default();
        let leader = placement.leader.clone().unwrap_or_default();
        assert!(!leader.is_empty(), "stream {name} has no leader: {placement:?}");
        assert_eq!(placement.replicas.len(), 2, "stream {name}: a leader and two followers: {placement:?}");
        let mut nodes: Vec<&str> = placement.replicas.iter().map(|r| r.name.as_str()).collect();
        nodes.push(&leader);
        nodes.sort_unstable();
        assert_eq!(nodes, ["n1", "n2", "n3"], "stream {name} is on every node: {placement:?}");
        assert_eq!(cluster.stream_leader(&name).await.as_deref(), Some(leader.as_str()), "monitoring agrees on {name}");
        eprintln!("stream {name}: R{}, leader {leader}, on {nodes:?}", info.config.num_replicas);
    }

    // A commune joins and its admin logs in; the coordinator reads the referrals.
    let coordinator = load::coordinator_token(&api).await.expect("coordinator");
    let (member_id, admin) =
        onboard_member(&api, &coordinator, "217702844", "dgs@meaux.fr").await.expect("Meaux joins");
    let (offer_id, provider) = load::billed_offer(&api, "integrated_engineering").await.expect("a billed offer");

    // The provider's durable consumer is created as production does (a service user), then its consumer runs
    // with the provider's own NKEY.
    cluster.ensure_consumers(&[&provider]).await.expect("the provider's durable consumer");
    let durable = id77_referral_consumer::durable_name(&provider);
    let referrals = js.get_stream(ns.stream(REFERRALS.name)).await.expect("REFERRALS");
    let consumer: jetstream::consumer::PullConsumer =
        referrals.get_consumer(&durable).await.expect("the provider's durable consumer exists");
    let consumer_info = consumer.cached_info();
    let consumer_replicas = consumer_info.cluster.as_ref().map_or(0, |c| c.replicas.len());
    assert_eq!(consumer_replicas, 2, "the durable consumer {durable} is replicated like its stream: {consumer_info:?}");
    let args = cluster.referral_consumer_args(&provider);
    let args: Vec<&str> = ["--rule", "accept-all"].into_iter().chain(args.iter().map(String::as_str)).collect();
    platform.start_referral_consumer(&provider, &args).expect("referral consumer");

    // Submit (requests learns of the approval by event: retried with the same Idempotency-Key).
    let body = json!({"offer_id": offer_id, "subject": "Diagnostic de la voirie communale", "description": ""});
    let submit = || {
        let (http, url, token, body) =
            (api.http.clone(), format!("{}/v1/requests", api.base), admin.clone(), body.clone());
        async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "cluster-1")
                .json(&body)
                .send()
                .await
                .ok()?;
            let status = response.status();
            Some((status, response.json::<Value>().await.unwrap_or_default()))
        }
    };
    let request = eventually("the submission to be accepted", Duration::from_secs(30), || async {
        match submit().await {
            Some((StatusCode::CREATED, value)) => Some(value),
            Some((StatusCode::CONFLICT | StatusCode::NOT_FOUND, _)) | None => None,
            Some((other, value)) => panic!("unexpected {other}: {value}"),
        }
    })
    .await;
    let request_id = request["id"].as_str().expect("request id").to_owned();
    assert_eq!(request["member_id"], member_id.as_str());

    // The provider's consumer accepts: the request is accepted, its quote proposed; the member's admin accepts
    // the quote and routing records the member's agreement.
    let path = format!("/v1/requests/{request_id}");
    let accepted = eventually("the request to become accepted", Duration::from_secs(30), || async {
        let (status, value) = api.get(&path, Some(&admin)).await;
        (status == StatusCode::OK && value["status"] == "accepted").then_some(value)
    })
    .await;
    assert_eq!(accepted["provider_code"], provider.as_str());
    let quote = accept_quote(&api, &admin, &coordinator, &request_id).await.expect("the quote is accepted");
    assert_eq!(quote["status"], "accepted", "{quote}");
    eprintln!("journey on the cluster: request {request_id} accepted by {provider}, quote {} accepted", quote["id"]);

    // The referral went through the REFERRALS stream: the provider's durable consumer has nothing left pending.
    let info = referrals.consumer_info(&durable).await.expect("consumer info");
    assert!(info.delivered.stream_sequence > 0, "the provider's consumer got the referral: {info:?}");
    assert_eq!(info.num_ack_pending, 0, "{info:?}");
    let names: Vec<String> = js.stream_names().collect::<Vec<_>>().await.into_iter().filter_map(Result::ok).collect();
    assert!(names.contains(&ns.stream(REFERRALS.name)), "{names:?}");

    platform.stop().await;
    drop(cluster);
}
