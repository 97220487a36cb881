//! One test's world for billing's service tests: its own database, subject prefix and billing service started
//! in-process, with helpers to publish the other services' events and call billing as any role.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use id77_billing::{Config, domain, run};
use id77_platform::auth::Role;
use id77_platform::testing::{TestKeys, delete_streams, drop_database, fresh_database_url, fresh_prefix, nats_url};
use id77_platform::{Namespace, nats::ensure_stream, streams, time};
use id77_proto::billing::v1 as pb;
use id77_proto::billing::v1::billing_service_client::BillingServiceClient;
use id77_proto::catalogue::v1 as catalogue;
use id77_proto::requests::v1 as requests;
use id77_proto::routing::v1 as routing;
use prost::Message;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use uuid::Uuid;

pub const OFFER_PUBLISHED: &str = "id77.catalogue.offer.published";
pub const REFERRAL_ACCEPTED: &str = "id77.routing.referral.accepted";
pub const MEMBER_UPDATED: &str = "id77.membership.member.updated";
pub const REQUEST_COMPLETED: &str = "id77.requests.request.completed";
pub const REQUEST_CANCELLED: &str = "id77.requests.request.cancelled";

/// Requests' `RequestCompleted` for the request of an accepted referral, naming the referral.
pub fn completed(accepted: &routing::ReferralAccepted) -> requests::RequestCompleted {
    requests::RequestCompleted {
        request_id: accepted.request_id.clone(),
        member_id: accepted.member_id.clone(),
        offer_id: accepted.offer_id.clone(),
        provider_code: accepted.provider_code.clone(),
        occurred_at: Some(time::to_proto(time::now())),
        referral_id: accepted.referral_id.clone(),
    }
}

/// Requests' `RequestCancelled` for the request of an accepted referral, by a member's user.
pub fn cancelled(accepted: &routing::ReferralAccepted, reason: &str) -> requests::RequestCancelled {
    requests::RequestCancelled {
        request_id: accepted.request_id.clone(),
        member_id: accepted.member_id.clone(),
        reason: reason.to_owned(),
        occurred_at: Some(time::to_proto(time::now())),
        actor_user_id: Uuid::now_v7().to_string(),
        actor_role: "member_user".into(),
        actor_name: "Jean Martin".into(),
        provider_code: accepted.provider_code.clone(),
    }
}

/// `message` with `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", TestKeys::bearer(token));
    request
}

/// One test's world: its own database, subject prefix and billing service.
pub struct World {
    pub database_url: String,
    pub ns: Namespace,
    pub js: jetstream::Context,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<()>>,
    pub client: BillingServiceClient<Channel>,
    pub pool: PgPool,
    pub keys: TestKeys,
    /// A coordinator's access token: sees every quote.
    pub coordinator: String,
}

impl World {
    pub async fn start(label: &str) -> anyhow::Result<Self> {
        Self::start_with(label, |_| {}).await
    }

    /// Starts billing with its configuration changed by `tweak` (a short quote validity, a fast sweep).
    pub async fn start_with(label: &str, tweak: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let database_url = fresh_database_url(label);
        let ns = Namespace::new(fresh_prefix());
        let js = jetstream::new(async_nats::connect(nats_url()).await?);
        for stream in [streams::CATALOGUE, streams::ROUTING, streams::MEMBERSHIP, streams::REQUESTS] {
            ensure_stream(&js, &ns, stream).await?;
        }
        let keys = TestKeys::new()?;
        let coordinator = keys.token(Role::Coordinator, None, None);
        let mut platform = id77_platform::testing::platform_config(
            "billing",
            &database_url,
            ns.prefix(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        );
        platform.jwks_file = Some(keys.jwks_file.clone());
        let mut config = Config::with_shipped_issuers(platform)?;
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(run(config, listener, shutdown.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let client = loop {
            ensure!(!handle.is_finished(), "billing stopped during start-up");
            if let Ok(mut client) = BillingServiceClient::connect(format!("http://{addr}")).await
                && client.list_quotes(with_token(pb::ListQuotesRequest::default(), &coordinator)).await.is_ok()
            {
                break client;
            }
            ensure!(tokio::time::Instant::now() < deadline, "billing did not answer within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let pool = PgPool::connect(&database_url).await?;
        Ok(Self { database_url, ns, js, shutdown, handle, client, pool, keys, coordinator })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.pool.close().await;
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(15), self.handle).await;
        delete_streams(&self.js, &self.ns).await;
        drop_database(&self.database_url).await;
        stopped.context("billing did not stop")??
    }

    pub async fn publish(&self, subject: &str, payload: Vec<u8>, message_id: &str) -> anyhow::Result<bool> {
        let publish = PublishMessage::build().payload(payload.into()).message_id(message_id);
        let ack: PublishAckFuture = self.js.send_publish(self.ns.subject(subject), publish).await?;
        Ok(ack.await?.duplicate)
    }

    pub async fn publish_offer(&self, offer: &catalogue::Offer) -> anyhow::Result<String> {
        let id = Uuid::now_v7().to_string();
        let event = catalogue::OfferPublished {
            offer: Some(offer.clone()),
            provider: Some(catalogue::Provider {
                code: offer.provider_code.clone(),
                name: "Direction des routes".into(),
                kind: catalogue::ProviderKind::DepartmentalService.into(),
                contact_email: "routes@id77.seine-et-marne.fr".into(),
            }),
        };
        self.publish(OFFER_PUBLISHED, event.encode_to_vec(), &id).await?;
        Ok(id)
    }

    pub async fn publish_referral(
        &self,
        referral: &routing::ReferralAccepted,
        message_id: &str,
    ) -> anyhow::Result<bool> {
        self.publish(REFERRAL_ACCEPTED, referral.encode_to_vec(), message_id).await
    }

    /// Waits until the consumer `durable` has recorded `message_id` in its inbox (its effect is committed).
    pub async fn wait_processed(&self, durable: &str, message_id: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let seen: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND message_id = $2)")
                    .bind(durable)
                    .bind(message_id)
                    .fetch_one(&self.pool)
                    .await?;
            if seen {
                return Ok(());
            }
            ensure!(tokio::time::Instant::now() < deadline, "{durable} did not process {message_id}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn quotes_of(&mut self, request_id: &str) -> anyhow::Result<Vec<pb::Quote>> {
        let req = pb::ListQuotesRequest { request_id: request_id.to_owned(), ..Default::default() };
        Ok(self.client.list_quotes(with_token(req, &self.coordinator)).await?.into_inner().quotes)
    }

    pub async fn list_as(&mut self, token: &str, req: pb::ListQuotesRequest) -> Result<Vec<pb::Quote>, tonic::Status> {
        Ok(self.client.list_quotes(with_token(req, token)).await?.into_inner().quotes)
    }

    pub async fn list_member_as(&mut self, token: &str, member_id: &str) -> Result<Vec<pb::Quote>, tonic::Status> {
        self.list_as(token, pb::ListQuotesRequest { member_id: member_id.to_owned(), ..Default::default() }).await
    }

    pub async fn get_as(&mut self, token: &str, id: &str) -> Result<pb::Quote, tonic::Status> {
        Ok(self.client.get_quote(with_token(pb::GetQuoteRequest { id: id.to_owned() }, token)).await?.into_inner())
    }

    /// Waits for the quote of a request.
    pub async fn wait_quote(&mut self, request_id: &str) -> anyhow::Result<pb::Quote> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mut quotes = self.quotes_of(request_id).await?;
            ensure!(quotes.len() <= 1, "{} quotes for one request", quotes.len());
            if let Some(quote) = quotes.pop() {
                return Ok(quote);
            }
            ensure!(tokio::time::Instant::now() < deadline, "no quote for request {request_id}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn quote_count(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM quote").fetch_one(&self.pool).await?)
    }

    /// The payloads on `subject` of the BILLING stream once there are `expected` of them (then checks no more
    /// arrive within a short while).
    pub async fn billing_messages(&self, subject: &str, expected: usize) -> anyhow::Result<Vec<Vec<u8>>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut stream = self.js.get_stream(self.ns.stream(streams::BILLING.name)).await?;
        let subject = self.ns.subject(subject);
        let mut settled = 0;
        loop {
            let last = stream.info().await?.state.last_sequence;
            let mut found = Vec::new();
            for seq in 1..=last {
                if let Ok(message) = stream.get_raw_message(seq).await
                    && message.subject.as_str() == subject
                {
                    found.push(message.payload.to_vec());
                }
            }
            ensure!(found.len() <= expected, "{} messages on {subject}, expected {expected}", found.len());
            if found.len() == expected {
                settled += 1;
                if settled == 3 {
                    return Ok(found);
                }
            }
            ensure!(tokio::time::Instant::now() < deadline, "only {} of {expected} on {subject}", found.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the prefixed BILLING stream holds `expected` messages.
    pub async fn wait_billing_events(&self, expected: u64) -> anyhow::Result<Vec<pb::QuoteIssued>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut stream = self.js.get_stream(self.ns.stream(streams::BILLING.name)).await?;
        loop {
            let n = stream.info().await?.state.messages;
            ensure!(n <= expected, "{n} messages in BILLING, expected {expected}");
            if n == expected {
                break;
            }
            ensure!(tokio::time::Instant::now() < deadline, "only {n} of {expected} events in BILLING");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut events = Vec::new();
        for seq in 1..=expected {
            let message = stream.get_raw_message(seq).await?;
            ensure!(message.subject.as_str() == self.ns.subject("id77.billing.quote.issued"));
            events.push(pb::QuoteIssued::decode(message.payload)?);
        }
        Ok(events)
    }

    /// Publishes requests' `RequestCompleted`; returns its message id.
    pub async fn publish_completed(&self, done: &requests::RequestCompleted) -> anyhow::Result<String> {
        let id = Uuid::now_v7().to_string();
        self.publish(REQUEST_COMPLETED, done.encode_to_vec(), &id).await?;
        Ok(id)
    }

    /// Publishes requests' `RequestCancelled`; returns its message id.
    pub async fn publish_cancelled(&self, cancelled: &requests::RequestCancelled) -> anyhow::Result<String> {
        let id = Uuid::now_v7().to_string();
        self.publish(REQUEST_CANCELLED, cancelled.encode_to_vec(), &id).await?;
        Ok(id)
    }

    /// Publishes the member's approval (name, SIREN, population), waiting until billing recorded it.
    pub async fn approve_member(&self, member_id: &str, name: &str, siren: &str) -> anyhow::Result<()> {
        let approved = id77_proto::membership::v1::MemberApproved {
            member_id: member_id.to_owned(),
            siren: siren.to_owned(),
            name: name.to_owned(),
            population: 2_000,
            occurred_at: Some(time::to_proto(time::now())),
            ..Default::default()
        };
        let id = Uuid::now_v7().to_string();
        self.publish("id77.membership.member.approved", approved.encode_to_vec(), &id).await?;
        self.wait_processed("billing-members", &id).await
    }

    /// A member admin's token for `member_id`, with a display name.
    pub fn member_admin(&self, member_id: &str, name: &str) -> String {
        let mut claims = id77_platform::auth::Claims::new(Uuid::now_v7(), Role::MemberAdmin, time::now().timestamp());
        claims.member_id = Some(member_id.to_owned());
        claims.name = name.to_owned();
        claims.email = "admin@mairie.example".to_owned();
        self.keys.sign(&claims)
    }

    pub async fn accept_as(
        &mut self,
        token: &str,
        id: &str,
        signatory_name: &str,
        purchase_order_number: &str,
    ) -> Result<pb::Quote, tonic::Status> {
        let req = pb::AcceptQuoteRequest {
            id: id.to_owned(),
            signatory_name: signatory_name.to_owned(),
            purchase_order_number: purchase_order_number.to_owned(),
        };
        Ok(self.client.accept_quote(with_token(req, token)).await?.into_inner())
    }

    pub async fn refuse_as(&mut self, token: &str, id: &str, reason: &str) -> Result<pb::Quote, tonic::Status> {
        let req = pb::RefuseQuoteRequest { id: id.to_owned(), reason: reason.to_owned() };
        Ok(self.client.refuse_quote(with_token(req, token)).await?.into_inner())
    }

    /// Rows of the outbox on `subject`, committed so far.
    pub async fn outbox_count(&self, subject: &str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM outbox WHERE subject = $1")
            .bind(subject)
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn invoice_count(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM invoice").fetch_one(&self.pool).await?)
    }

    /// A quote as the coordinator reads it.
    pub async fn quote(&mut self, id: &str) -> anyhow::Result<pb::Quote> {
        let coordinator = self.coordinator.clone();
        Ok(self.get_as(&coordinator, id).await?)
    }

    /// Waits until the quote `id` has `status` (the coordinator reading it).
    pub async fn wait_quote_status(&mut self, id: &str, status: pb::QuoteStatus) -> anyhow::Result<pb::Quote> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let quote = self.quote(id).await?;
            if quote.status() == status {
                return Ok(quote);
            }
            ensure!(tokio::time::Instant::now() < deadline, "quote {id} stays {:?}, not {status:?}", quote.status());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn offer(provider_code: &str, billed: bool, price_cents: i64, version: i32) -> catalogue::Offer {
    catalogue::Offer {
        id: Uuid::now_v7().to_string(),
        code: "amo-amenagement-voirie".into(),
        title: "Assistance à maîtrise d'ouvrage pour l'aménagement d'une voirie communale".into(),
        summary: String::new(),
        category: catalogue::OfferCategory::IntegratedEngineering.into(),
        themes: vec!["voirie".into()],
        provider_code: provider_code.into(),
        billed,
        price_cents,
        version,
        ..Default::default()
    }
}

pub fn referral(offer: &catalogue::Offer) -> routing::ReferralAccepted {
    routing::ReferralAccepted {
        referral_id: Uuid::now_v7().to_string(),
        request_id: Uuid::now_v7().to_string(),
        offer_id: offer.id.clone(),
        member_id: Uuid::now_v7().to_string(),
        provider_code: offer.provider_code.clone(),
        occurred_at: Some(time::to_proto(time::now())),
        ..Default::default()
    }
}

pub fn year() -> i32 {
    domain::billing_year(time::now())
}

/// Waits for the invoice of a request (as the coordinator).
pub async fn wait_invoice(w: &mut World, request_id: &str) -> anyhow::Result<pb::Invoice> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let req = pb::ListInvoicesRequest { request_id: request_id.to_owned(), ..Default::default() };
        let mut invoices = w.client.list_invoices(with_token(req, &w.coordinator)).await?.into_inner().invoices;
        ensure!(invoices.len() <= 1, "{} invoices for one request", invoices.len());
        if let Some(invoice) = invoices.pop() {
            return Ok(invoice);
        }
        ensure!(tokio::time::Instant::now() < deadline, "no invoice for request {request_id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> anyhow::Result<tonic::Code> {
    match result {
        Ok(value) => bail!("expected an error, got {value:?}"),
        Err(status) => Ok(status.code()),
    }
}

/// The ids of a page, sorted: quotes of one list may be issued in any order (a referral whose tariff is not
/// known yet is retried while later ones go through).
pub fn ids(quotes: &[pb::Quote]) -> Vec<&str> {
    sorted(quotes.iter().map(|q| q.id.as_str()).collect())
}

pub fn sorted(mut ids: Vec<&str>) -> Vec<&str> {
    ids.sort_unstable();
    ids
}
