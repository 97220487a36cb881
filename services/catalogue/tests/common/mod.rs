//! What the catalogue's integration tests share: publishing another service's event on its (prefixed) stream,
//! and reading back what the catalogue published.

use id77_platform::{Namespace, streams};
use prost::{Message, Name};

/// Publishes an event of another service on its (prefixed) stream.
pub async fn publish<M: Message + Name>(
    js: &async_nats::jetstream::Context,
    ns: &Namespace,
    stream: streams::StreamDef,
    subject: &str,
    id: &str,
    event: &M,
) {
    let _ = id77_platform::nats::ensure_stream(js, ns, stream).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id);
    headers.insert("Id77-Event-Type", M::full_name().as_str());
    let ack = js
        .publish_with_headers(ns.subject(subject), headers, event.encode_to_vec().into())
        .await
        .unwrap_or_else(|e| panic!("publish {subject}: {e}"));
    ack.await.unwrap_or_else(|e| panic!("ack {subject}: {e}"));
}

/// The payloads the catalogue published on `subject` so far, in order.
pub async fn events<M: Message + Default>(
    js: &async_nats::jetstream::Context,
    ns: &Namespace,
    subject: &str,
) -> anyhow::Result<Vec<M>> {
    let mut stream = js.get_stream(ns.stream(streams::CATALOGUE.name)).await?;
    let last = stream.info().await?.state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let Ok(message) = stream.get_raw_message(seq).await else { continue };
        if message.subject.as_str() == ns.subject(subject) {
            out.push(M::decode(message.payload)?);
        }
    }
    Ok(out)
}

/// A catalogue started in-process for one test: its own database, subject prefix and signing keys, answering on
/// `channel` once its API answers (database migrated, NATS connected).
pub struct Running {
    pub database_url: String,
    pub ns: Namespace,
    pub js: async_nats::jetstream::Context,
    pub keys: id77_platform::testing::TestKeys,
    /// To the catalogue's gRPC server (each test makes the clients it needs).
    pub channel: tonic::transport::Channel,
    shutdown: tokio_util::sync::CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Starts it with `max_connections` to its database and the config `configure` makes of the default one.
    pub async fn start(
        label: &str,
        max_connections: u32,
        configure: impl FnOnce(id77_catalogue::Config) -> id77_catalogue::Config,
    ) -> anyhow::Result<Self> {
        use id77_platform::testing::{TestKeys, fresh_database_url, fresh_prefix, nats_url, platform_config};
        use id77_proto::catalogue::v1 as pb;
        use id77_proto::catalogue::v1::catalogue_service_client::CatalogueServiceClient;
        let database_url = fresh_database_url(label);
        let ns = Namespace::new(fresh_prefix());
        let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await?);
        let keys = TestKeys::new()?;
        let mut platform =
            platform_config("catalogue", &database_url, ns.prefix(), std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        platform.jwks_file = Some(keys.jwks_file.clone());
        platform.db_max_connections = max_connections;
        let config = configure(id77_catalogue::Config::new(platform));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let handle = tokio::spawn(id77_catalogue::run(config, listener, shutdown.clone()));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?.connect_lazy();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if handle.is_finished() {
                return match handle.await? {
                    Ok(()) => Err(anyhow::anyhow!("the catalogue stopped during start-up")),
                    Err(e) => Err(e.context("the catalogue failed to start")),
                };
            }
            let mut client = CatalogueServiceClient::new(channel.clone());
            if client.list_providers(pb::ListProvidersRequest {}).await.is_ok() {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the catalogue did not answer within 30 s");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(Self { database_url, ns, js, keys, channel, shutdown, handle: Some(handle) })
    }

    /// Stops the catalogue, then removes its streams and database.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(15), handle).await;
        }
        id77_platform::testing::delete_streams(&self.js, &self.ns).await;
        id77_platform::testing::drop_database(&self.database_url).await;
    }
}
