//! The catalogue against the local PostgreSQL and NATS: the seed is served over gRPC, each offer is published
//! once, a restart on an unchanged seed publishes nothing, and a changed offer gets exactly one new version.
//! Reads are public: anonymous callers and any verified caller get them; a token that does not verify is refused.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use id77_catalogue::{Config, run};
use id77_platform::auth::{Claims, Role};
use id77_platform::testing::{TestKeys, delete_streams, drop_database, fresh_database_url, fresh_prefix, nats_url};
use id77_platform::{Namespace, streams};
use id77_proto::catalogue::v1 as pb;
use id77_proto::catalogue::v1::catalogue_service_client::CatalogueServiceClient;
use prost::Message;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// Offers, providers and exhibitions of the shipped seed.
fn seed_counts() -> (u64, usize, usize, usize) {
    let seed: serde_json::Value = serde_json::from_str(id77_catalogue::seed::EMBEDDED_SEED).unwrap_or_default();
    let offers = seed["offers"].as_array().cloned().unwrap_or_default();
    let of = |field: &str, value: &str| offers.iter().filter(|o| o[field] == value).count();
    let providers = seed["providers"].as_array().map_or(0, Vec::len);
    (offers.len() as u64, providers, of("category", "exhibition_loan"), of("provider_code", "dir-routes"))
}

struct Env {
    database_url: String,
    ns: Namespace,
    js: async_nats::jetstream::Context,
    keys: TestKeys,
}

impl Env {
    async fn new(label: &str) -> anyhow::Result<Self> {
        let client = async_nats::connect(nats_url()).await?;
        Ok(Self {
            database_url: fresh_database_url(label),
            ns: Namespace::new(fresh_prefix()),
            js: async_nats::jetstream::new(client),
            keys: TestKeys::new()?,
        })
    }

    fn config(&self, seed_path: Option<PathBuf>) -> Config {
        let mut platform = id77_platform::testing::platform_config(
            "catalogue",
            &self.database_url,
            self.ns.prefix(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        );
        platform.jwks_file = Some(self.keys.jwks_file.clone());
        Config { seed_path, ..Config::new(platform) }
    }

    async fn cleanup(self) {
        delete_streams(&self.js, &self.ns).await;
        drop_database(&self.database_url).await;
    }

    /// Messages in the prefixed CATALOGUE stream.
    async fn stream_messages(&self) -> anyhow::Result<u64> {
        let mut stream = self.js.get_stream(self.ns.stream(streams::CATALOGUE.name)).await?;
        Ok(stream.info().await?.state.messages)
    }

    /// Waits until the stream holds `expected` messages (and fails if it ever holds more).
    async fn wait_for_messages(&self, expected: u64) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let n = self.stream_messages().await.unwrap_or(0);
            ensure!(n <= expected, "{n} messages in CATALOGUE, expected {expected}");
            if n == expected {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("only {n} of {expected} messages reached CATALOGUE");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `OfferPublished` events of the stream, in order.
    async fn published(&self) -> anyhow::Result<Vec<pb::OfferPublished>> {
        let stream = self.js.get_stream(self.ns.stream(streams::CATALOGUE.name)).await?;
        let mut events = Vec::new();
        for seq in 1..=self.stream_messages().await? {
            let message = stream.get_raw_message(seq).await?;
            if message.subject.as_str() != self.ns.subject("id77.catalogue.offer.published") {
                continue;
            }
            let event_type = message.headers.get("Id77-Event-Type").map(|v| v.as_str().to_owned());
            ensure!(event_type.as_deref() == Some("id77.catalogue.v1.OfferPublished"), "{event_type:?}");
            ensure!(message.headers.get("Nats-Msg-Id").is_some(), "no Nats-Msg-Id");
            events.push(pb::OfferPublished::decode(message.payload)?);
        }
        Ok(events)
    }
}

struct Running {
    shutdown: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
    client: CatalogueServiceClient<Channel>,
}

impl Running {
    async fn start(config: Config) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(run(config, listener, shutdown.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let client = loop {
            if handle.is_finished() {
                return match handle.await? {
                    Ok(()) => Err(anyhow::anyhow!("service stopped during start-up")),
                    Err(e) => Err(e.context("service failed to start")),
                };
            }
            if let Ok(mut client) = CatalogueServiceClient::connect(format!("http://{addr}")).await
                && client.list_providers(pb::ListProvidersRequest {}).await.is_ok()
            {
                break client;
            }
            ensure!(tokio::time::Instant::now() < deadline, "catalogue did not answer within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Ok(Self { shutdown, handle, client })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.handle).await.context("service did not stop")??
    }
}

async fn all_offers(client: &mut CatalogueServiceClient<Channel>, page_size: u32) -> anyhow::Result<Vec<pb::Offer>> {
    let mut offers = Vec::new();
    let mut token = String::new();
    for _ in 0..100 {
        let page = client
            .list_offers(pb::ListOffersRequest { page_size, page_token: token.clone(), ..Default::default() })
            .await?
            .into_inner();
        ensure!(page.offers.len() <= page_size as usize, "page larger than asked");
        offers.extend(page.offers);
        if page.next_page_token.is_empty() {
            return Ok(offers);
        }
        token = page.next_page_token;
    }
    bail!("pagination did not end")
}

#[tokio::test]
async fn seed_is_served_published_once_and_reloaded_idempotently() -> anyhow::Result<()> {
    let env = Env::new("catalogue").await?;
    let result = scenario(&env).await;
    env.cleanup().await;
    result
}

async fn scenario(env: &Env) -> anyhow::Result<()> {
    let (seed_offers, seed_providers, seed_exhibitions, seed_roads) = seed_counts();
    // First start: the seed is loaded and served.
    let mut service = Running::start(env.config(None)).await?;
    let client = &mut service.client;
    let offers = all_offers(client, 40).await?;
    ensure!(offers.len() as u64 == seed_offers, "{} offers listed", offers.len());
    let codes: Vec<&str> = offers.iter().map(|o| o.code.as_str()).collect();
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    sorted.dedup();
    ensure!(codes == sorted, "pages overlap or are out of order: {codes:?}");
    ensure!(offers.iter().all(|o| o.version == 1 && uuid::Uuid::parse_str(&o.id).is_ok()));
    ensure!(offers.iter().filter(|o| o.billed).all(|o| o.price_cents > 0));
    ensure!(offers.iter().filter(|o| !o.billed).all(|o| o.price_cents == 0));

    let exhibitions = client
        .list_offers(pb::ListOffersRequest { category: pb::OfferCategory::ExhibitionLoan.into(), ..Default::default() })
        .await?
        .into_inner();
    ensure!(exhibitions.offers.len() == seed_exhibitions.min(20), "{:?}", exhibitions.offers);
    ensure!(exhibitions.offers.iter().all(|o| o.category == i32::from(pb::OfferCategory::ExhibitionLoan)));
    let roads = client
        .list_offers(pb::ListOffersRequest { provider_code: "dir-routes".into(), ..Default::default() })
        .await?
        .into_inner();
    ensure!(roads.offers.len() == seed_roads.min(20) && roads.offers.iter().all(|o| o.provider_code == "dir-routes"));

    let by_code = client.get_offer(pb::GetOfferRequest { id: "formation-plu".into(), version: 0 }).await?.into_inner();
    let by_id = client.get_offer(pb::GetOfferRequest { id: by_code.id.clone(), version: 0 }).await?.into_inner();
    ensure!(by_code == by_id && by_code.provider_code == "caue77");
    let missing = client.get_offer(pb::GetOfferRequest { id: "pas-au-catalogue".into(), version: 0 }).await;
    ensure!(missing.as_ref().err().map(|s| s.code()) == Some(tonic::Code::NotFound), "{missing:?}");
    let invalid = client.get_offer(pb::GetOfferRequest { id: "../etc".into(), version: 0 }).await;
    ensure!(invalid.as_ref().err().map(|s| s.code()) == Some(tonic::Code::InvalidArgument), "{invalid:?}");
    let bad_token = client.list_offers(pb::ListOffersRequest { page_token: "nope".into(), ..Default::default() }).await;
    ensure!(bad_token.as_ref().err().map(|s| s.code()) == Some(tonic::Code::InvalidArgument));
    let providers = client.list_providers(pb::ListProvidersRequest {}).await?.into_inner().providers;
    ensure!(providers.len() == seed_providers, "{providers:?}");
    ensure!(providers.iter().all(|p| id77_platform::streams::is_valid_subject_token(&p.code)));

    // Each offer reaches the stream exactly once, with its provider.
    env.wait_for_messages(seed_offers).await?;
    let events = env.published().await?;
    let mut published: BTreeMap<String, pb::Offer> = BTreeMap::new();
    for event in events {
        let offer = event.offer.context("event without offer")?;
        let provider = event.provider.context("event without provider")?;
        ensure!(provider.code == offer.provider_code);
        ensure!(published.insert(offer.code.clone(), offer).is_none(), "an offer was published twice");
    }
    let listed: BTreeMap<String, pb::Offer> = offers.iter().map(|o| (o.code.clone(), o.clone())).collect();
    ensure!(published == listed, "published events differ from the listed offers");
    service.stop().await?;

    // Restart on the same database with the same seed: nothing changes, nothing is published.
    let mut service = Running::start(env.config(None)).await?;
    let again = all_offers(&mut service.client, 100).await?;
    ensure!(again == offers, "offers changed on restart");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure!(env.stream_messages().await? == seed_offers, "a restart published again");
    let pool = sqlx::PgPool::connect(&env.database_url).await?;
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&pool).await?;
    ensure!(outbox as u64 == seed_offers, "{outbox} outbox rows after a restart");
    service.stop().await?;

    // A seed with one changed price: that offer, and only it, gets version 2 under the same id.
    let mut seed: serde_json::Value = serde_json::from_str(id77_catalogue::seed::EMBEDDED_SEED)?;
    let offer = seed["offers"]
        .as_array_mut()
        .and_then(|offers| offers.iter_mut().find(|o| o["code"] == "diagnostic-ouvrages-art"))
        .context("seed offer")?;
    offer["price"]["amount_cents"] = serde_json::json!(195000);
    let path = std::env::temp_dir().join(format!("id77-catalogue-seed-{}.json", uuid::Uuid::new_v4()));
    tokio::fs::write(&path, serde_json::to_vec(&seed)?).await?;
    let started = Running::start(env.config(Some(path.clone()))).await;
    let _ = tokio::fs::remove_file(&path).await;
    let mut service = started?;
    let changed =
        service.client.get_offer(pb::GetOfferRequest { id: "diagnostic-ouvrages-art".into(), version: 0 }).await?;
    let changed = changed.into_inner();
    // The previous version is still there, for the requests made on it.
    let v1 = service.client.get_offer(pb::GetOfferRequest { id: changed.id.clone(), version: 1 }).await?.into_inner();
    ensure!(v1.version == 1 && v1.price_cents == 180000, "{v1:?}");
    let before = listed.get("diagnostic-ouvrages-art").context("offer listed before")?;
    ensure!(changed.id == before.id && changed.version == 2 && changed.price_cents == 195000, "{changed:?}");
    // offer.updated and offer.published.
    env.wait_for_messages(seed_offers + 2).await?;
    let last = env.published().await?.pop().and_then(|e| e.offer).context("last event")?;
    ensure!(last == changed, "{last:?}");
    let versions: HashSet<i32> =
        all_offers(&mut service.client, 100).await?.iter().filter(|o| o.id != changed.id).map(|o| o.version).collect();
    ensure!(versions == HashSet::from([1]), "other offers changed version: {versions:?}");
    service.stop().await?;
    pool.close().await;
    Ok(())
}

/// `message` with `authorization: Bearer <token>`.
fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", TestKeys::bearer(token));
    request
}

#[tokio::test]
async fn reads_are_public_but_a_token_that_does_not_verify_is_refused() -> anyhow::Result<()> {
    let env = Env::new("catalogue").await?;
    let result = async {
        let mut service = Running::start(env.config(None)).await?;
        let client = &mut service.client;
        let now = id77_platform::time::now().timestamp();
        let member = env.keys.token(Role::MemberUser, Some(uuid::Uuid::now_v7()), None);
        let agent = env.keys.token(Role::ProviderAgent, None, Some("caue77"));
        let operator = env.keys.token(Role::Operator, None, None);

        // Anonymous and every role: served.
        ensure!(client.list_offers(pb::ListOffersRequest::default()).await?.into_inner().offers.len() == 20);
        for token in [&member, &agent, &operator] {
            let offers = client.list_offers(with_token(pb::ListOffersRequest::default(), token)).await?;
            ensure!(offers.into_inner().offers.len() == 20);
            client.get_offer(with_token(pb::GetOfferRequest { id: "formation-plu".into(), version: 0 }, token)).await?;
            client.list_providers(with_token(pb::ListProvidersRequest {}, token)).await?;
        }

        // A token that fails verification: expired, signed with another key, wrong issuer, garbage.
        let mut expired = Claims::new(uuid::Uuid::now_v7(), Role::MemberUser, now - 3600);
        expired.member_id = Some(uuid::Uuid::now_v7().to_string());
        let mut foreign_issuer = Claims::new(uuid::Uuid::now_v7(), Role::Coordinator, now);
        foreign_issuer.iss = "https://evil.example".into();
        let other_keys = TestKeys::new()?;
        let bad_tokens = [
            env.keys.sign(&expired),
            other_keys.token(Role::Coordinator, None, None),
            env.keys.sign(&foreign_issuer),
            "not.a.token".to_owned(),
        ];
        for token in &bad_tokens {
            let listed = client.list_offers(with_token(pb::ListOffersRequest::default(), token)).await;
            ensure!(listed.as_ref().err().map(|s| s.code()) == Some(tonic::Code::Unauthenticated), "{listed:?}");
            let got = client
                .get_offer(with_token(pb::GetOfferRequest { id: "formation-plu".into(), version: 0 }, token))
                .await;
            ensure!(got.as_ref().err().map(|s| s.code()) == Some(tonic::Code::Unauthenticated), "{got:?}");
            let providers = client.list_providers(with_token(pb::ListProvidersRequest {}, token)).await;
            ensure!(providers.as_ref().err().map(|s| s.code()) == Some(tonic::Code::Unauthenticated));
        }
        service.stop().await
    }
    .await;
    env.cleanup().await;
    result
}

#[tokio::test]
async fn an_invalid_seed_fails_start_up_with_a_clear_error() -> anyhow::Result<()> {
    let env = Env::new("catalogue").await?;
    let path = std::env::temp_dir().join(format!("id77-catalogue-bad-seed-{}.json", uuid::Uuid::new_v4()));
    let bad = r#"{"providers": [], "offers": [{"code": "x", "title": "X", "summary": "", "category":
        "integrated_engineering", "provider_code": "nobody", "price": {"kind": "flat", "amount_cents": 0}}]}"#;
    tokio::fs::write(&path, bad).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        run(env.config(Some(path.clone())), listener, CancellationToken::new()),
    )
    .await;
    let _ = tokio::fs::remove_file(&path).await;
    env.cleanup().await;
    let error = match result {
        Ok(Err(error)) => format!("{error:#}"),
        other => bail!("expected a start-up error, got {other:?}"),
    };
    ensure!(error.contains("provider_code \"nobody\""), "{error}");
    ensure!(error.contains("price.amount_cents"), "{error}");
    Ok(())
}
