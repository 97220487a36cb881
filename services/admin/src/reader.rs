//! Reads requests, routing and billing through their gRPC read APIs as a coordinator (ADR 0013: never their
//! tables): every page of every list, or one request's share for the re-read after the settle period.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use id77_proto::billing::v1 as billing;
use id77_proto::billing::v1::billing_service_client::BillingServiceClient;
use id77_proto::membership::v1 as membership;
use id77_proto::membership::v1::identity_service_client::IdentityServiceClient;
use id77_proto::requests::v1 as requests;
use id77_proto::requests::v1::requests_service_client::RequestsServiceClient;
use id77_proto::routing::v1 as routing;
use id77_proto::routing::v1::routing_service_client::RoutingServiceClient;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::model::{InvoiceRecord, QuoteRecord, ReferralRecord, RequestRecord, Snapshot};

/// Local addresses of the services (`make run`, each service's `PORT`).
pub const DEFAULT_MEMBERSHIP_URL: &str = "http://127.0.0.1:7051";
pub const DEFAULT_REQUESTS_URL: &str = "http://127.0.0.1:7053";
pub const DEFAULT_ROUTING_URL: &str = "http://127.0.0.1:7054";
pub const DEFAULT_BILLING_URL: &str = "http://127.0.0.1:7055";
/// The largest page the services serve (`id77_platform::page::MAX_PAGE_SIZE`); a larger ask is clamped.
pub const PAGE_SIZE: u32 = 100;
/// Per-call deadline by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long findings are given to converge before the re-read, by default.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(10);
/// The `client` membership records for the login (audit log, throttling).
const CLIENT: &str = "id77-admin";

/// How to sign in.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A coordinator's access token, used as is.
    Token(String),
    /// A coordinator's e-mail and password, exchanged for a token with membership's `IssueToken`.
    Password { email: String, password: String },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(..)"),
            Self::Password { email, .. } => f.debug_struct("Password").field("email", email).finish_non_exhaustive(),
        }
    }
}

/// Where the services are, who reads them, and how patiently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderConfig {
    pub membership_url: String,
    pub requests_url: String,
    pub routing_url: String,
    pub billing_url: String,
    pub credentials: Credentials,
    /// Deadline of each call (and of each connection attempt).
    pub timeout: Duration,
    /// Wait between the first read and the re-read of the requests found inconsistent.
    pub settle: Duration,
    /// Page size asked of every list (clamped by the services to their maximum).
    pub page_size: u32,
}

impl ReaderConfig {
    /// The local services (`make run`) with default timeouts.
    pub fn local(credentials: Credentials) -> Self {
        Self {
            membership_url: DEFAULT_MEMBERSHIP_URL.to_owned(),
            requests_url: DEFAULT_REQUESTS_URL.to_owned(),
            routing_url: DEFAULT_ROUTING_URL.to_owned(),
            billing_url: DEFAULT_BILLING_URL.to_owned(),
            credentials,
            timeout: DEFAULT_TIMEOUT,
            settle: DEFAULT_SETTLE,
            page_size: PAGE_SIZE,
        }
    }
}

/// A service's name and address, for errors.
#[derive(Debug, Clone)]
struct Service {
    name: &'static str,
    url: String,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.url)
    }
}

impl Service {
    fn channel(name: &'static str, url: &str, timeout: Duration) -> anyhow::Result<(Self, Channel)> {
        let service = Self { name, url: url.to_owned() };
        let endpoint = Endpoint::from_shared(url.to_owned()).with_context(|| format!("invalid {name} URL {url:?}"))?;
        let channel = endpoint.connect_timeout(timeout).timeout(timeout).connect_lazy();
        Ok((service, channel))
    }

    fn error(&self, rpc: &str, status: &Status) -> anyhow::Error {
        let hint = match status.code() {
            Code::Unauthenticated | Code::PermissionDenied => " (sign in as a coordinator)",
            _ => "",
        };
        anyhow!("{self}: {rpc}: {}{hint}", describe(status))
    }
}

/// A status with its cause chain (a transport error says why: refused, timed out, DNS...).
fn describe(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How often a page is asked for before its error counts, and the pause between tries.
const PAGE_TRIES: u32 = 4;
const PAGE_RETRY_DELAY: Duration = Duration::from_secs(2);

/// An answer that may change by itself within seconds: a service restarting (UNAVAILABLE), or a service that has
/// not yet seen membership's newest signing key (UNAUTHENTICATED "unknown signing key": a service re-reads the
/// keys at most every 5 s, so a token signed just after a rotation is refused for that long).
fn transient(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable => true,
        Code::Unauthenticated => status.message().contains("unknown signing key"),
        _ => false,
    }
}

/// Every page of a list: `page(token)` answers one page and the next token (empty at the end).
async fn all_pages<T, F, Fut>(service: &Service, rpc: &str, mut page: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), Status>>,
{
    let mut items = Vec::new();
    let mut token = String::new();
    let mut pages = 0_u32;
    loop {
        pages += 1;
        let mut tries = 0_u32;
        let (batch, next) = loop {
            tries += 1;
            match page(token.clone()).await {
                Ok(answer) => break answer,
                Err(s) if tries < PAGE_TRIES && transient(&s) => {
                    tokio::time::sleep(PAGE_RETRY_DELAY).await;
                }
                Err(s) => return Err(service.error(&format!("{rpc} (page {pages})"), &s)),
            }
        };
        items.extend(batch);
        if next.is_empty() {
            return Ok(items);
        }
        if next == token {
            bail!("{service}: {rpc} answered page {pages} with the same page token again");
        }
        token = next;
    }
}

/// Signed-in clients of requests, routing and billing.
pub struct Reader {
    requests: (Service, RequestsServiceClient<Channel>),
    routing: (Service, RoutingServiceClient<Channel>),
    billing: (Service, BillingServiceClient<Channel>),
    bearer: AsciiMetadataValue,
    page_size: u32,
}

impl Reader {
    /// Prepares the channels (connected on first use) and signs in (membership, unless given a token).
    pub async fn connect(config: &ReaderConfig) -> anyhow::Result<Self> {
        let (requests, requests_channel) = Service::channel("requests", &config.requests_url, config.timeout)?;
        let (routing, routing_channel) = Service::channel("routing", &config.routing_url, config.timeout)?;
        let (billing, billing_channel) = Service::channel("billing", &config.billing_url, config.timeout)?;
        let token = match &config.credentials {
            Credentials::Token(token) => token.trim().to_owned(),
            Credentials::Password { email, password } => {
                let (membership, channel) = Service::channel("membership", &config.membership_url, config.timeout)?;
                let request = membership::IssueTokenRequest {
                    email: email.trim().to_owned(),
                    password: password.clone(),
                    client: CLIENT.to_owned(),
                };
                let pair = IdentityServiceClient::new(channel)
                    .issue_token(request)
                    .await
                    .map_err(|s| membership.error(&format!("IssueToken for {}", email.trim()), &s))?
                    .into_inner();
                pair.access_token
            }
        };
        if token.is_empty() {
            bail!("no access token (membership answered none, or the token given is empty)");
        }
        let bearer: AsciiMetadataValue = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| anyhow!("the access token has characters a gRPC header cannot carry"))?;
        Ok(Self {
            requests: (requests, RequestsServiceClient::new(requests_channel)),
            routing: (routing, RoutingServiceClient::new(routing_channel)),
            billing: (billing, BillingServiceClient::new(billing_channel)),
            bearer,
            page_size: config.page_size,
        })
    }

    /// A call with the caller's token.
    fn authed<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", self.bearer.clone());
        request
    }

    /// Every request (as coordinator: empty filters), then every referral, quote and invoice.
    pub async fn everything(&self) -> anyhow::Result<Snapshot> {
        let requests = self.list_requests().await?;
        let mut snapshot = self.documents("").await?;
        snapshot.requests = requests;
        Ok(snapshot)
    }

    /// One request (absent when requests does not have it) and its referrals, quotes and invoices.
    pub async fn one_request(&self, id: &str) -> anyhow::Result<Snapshot> {
        let (service, client) = &self.requests;
        let answer = client.clone().get_request(self.authed(requests::GetRequestRequest { id: id.to_owned() })).await;
        let request = match answer {
            Ok(request) => Some(RequestRecord::from(request.into_inner())),
            Err(status) if status.code() == Code::NotFound => None,
            Err(status) => return Err(service.error(&format!("GetRequest {id}"), &status)),
        };
        let mut snapshot = self.documents(id).await?;
        snapshot.requests = request.into_iter().collect();
        Ok(snapshot)
    }

    async fn list_requests(&self) -> anyhow::Result<Vec<RequestRecord>> {
        let (service, client) = &self.requests;
        let items = all_pages(service, "ListRequests", |page_token| {
            let mut client = client.clone();
            let request = self.authed(requests::ListRequestsRequest {
                page_size: self.page_size,
                page_token,
                ..Default::default()
            });
            async move {
                let page = client.list_requests(request).await?.into_inner();
                Ok((page.requests, page.next_page_token))
            }
        })
        .await?;
        Ok(items.into_iter().map(RequestRecord::from).collect())
    }

    /// Referrals, quotes and invoices: all of them (`request_id` empty) or one request's.
    async fn documents(&self, request_id: &str) -> anyhow::Result<Snapshot> {
        let (service, client) = &self.routing;
        let referrals = all_pages(service, "ListReferrals", |page_token| {
            let mut client = client.clone();
            let request = self.authed(routing::ListReferralsRequest {
                request_id: request_id.to_owned(),
                page_size: self.page_size,
                page_token,
                ..Default::default()
            });
            async move {
                let page = client.list_referrals(request).await?.into_inner();
                Ok((page.referrals, page.next_page_token))
            }
        })
        .await?;
        let (service, client) = &self.billing;
        let quotes = all_pages(service, "ListQuotes", |page_token| {
            let mut client = client.clone();
            let request = self.authed(billing::ListQuotesRequest {
                request_id: request_id.to_owned(),
                page_size: self.page_size,
                page_token,
                ..Default::default()
            });
            async move {
                let page = client.list_quotes(request).await?.into_inner();
                Ok((page.quotes, page.next_page_token))
            }
        })
        .await?;
        let invoices = all_pages(service, "ListInvoices", |page_token| {
            let mut client = client.clone();
            let request = self.authed(billing::ListInvoicesRequest {
                request_id: request_id.to_owned(),
                page_size: self.page_size,
                page_token,
                ..Default::default()
            });
            async move {
                let page = client.list_invoices(request).await?.into_inner();
                Ok((page.invoices, page.next_page_token))
            }
        })
        .await?;
        Ok(Snapshot {
            requests: Vec::new(),
            referrals: referrals.into_iter().map(ReferralRecord::from).collect(),
            quotes: quotes.into_iter().map(QuoteRecord::from).collect(),
            // A held training session's invoices bill no request: they are not the reconciler's to compare.
            invoices: invoices.into_iter().filter(InvoiceRecord::bills_a_request).map(InvoiceRecord::from).collect(),
        })
    }
}

impl crate::Source for Reader {
    async fn everything(&self) -> anyhow::Result<Snapshot> {
        Reader::everything(self).await
    }

    async fn one_request(&self, id: &str) -> anyhow::Result<Snapshot> {
        Reader::one_request(self, id).await
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn service() -> Service {
        Service { name: "billing", url: "http://127.0.0.1:7055".into() }
    }

    #[tokio::test]
    async fn all_pages_follows_the_tokens_to_the_end() {
        let asked = RefCell::new(Vec::new());
        let items = all_pages(&service(), "ListQuotes", |token| {
            asked.borrow_mut().push(token.clone());
            async move {
                Ok(match token.as_str() {
                    "" => (vec![1, 2], "a".to_owned()),
                    "a" => (vec![3], "b".to_owned()),
                    _ => (vec![4], String::new()),
                })
            }
        })
        .await;
        assert_eq!(items.ok(), Some(vec![1, 2, 3, 4]));
        assert_eq!(*asked.borrow(), ["", "a", "b"]);
    }

    #[tokio::test]
    async fn all_pages_names_the_service_and_page_of_an_error() {
        let error = all_pages::<u8, _, _>(&service(), "ListQuotes", |token| async move {
            if token.is_empty() {
                Ok((vec![1], "x".to_owned()))
            } else {
                Err(Status::permission_denied("coordinator only"))
            }
        })
        .await
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "billing (http://127.0.0.1:7055): ListQuotes (page 2): PermissionDenied: coordinator only (sign in as \
                 a coordinator)"
            )
        );
    }

    #[tokio::test]
    async fn all_pages_stops_on_a_token_that_does_not_move() {
        let error = all_pages::<u8, _, _>(&service(), "ListInvoices", |_| async { Ok((vec![1], "same".to_owned())) })
            .await
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("billing (http://127.0.0.1:7055): ListInvoices answered page 2 with the same page token again")
        );
    }

    #[test]
    fn credentials_do_not_print_secrets() {
        let password = Credentials::Password { email: "coordination@id77.demo".into(), password: "s3cret!".into() };
        let text = format!("{:?} {:?}", password, Credentials::Token("eyJhbGciOi".into()));
        assert_eq!(text, "Password { email: \"coordination@id77.demo\", .. } Token(..)");
    }

    #[tokio::test]
    async fn an_unreachable_service_is_named_in_the_error() {
        // Port 1 on loopback: nothing listens there, the connection is refused at once.
        let mut config = ReaderConfig::local(Credentials::Token("t".into()));
        config.requests_url = "http://127.0.0.1:1".into();
        config.timeout = Duration::from_secs(5);
        let reader = Reader::connect(&config).await;
        let error = match reader {
            Ok(reader) => reader.everything().await.err().map(|e| e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        let error = error.unwrap_or_default();
        assert!(error.starts_with("requests (http://127.0.0.1:1): ListRequests (page 1): Unavailable"), "{error}");
    }

    #[tokio::test]
    async fn a_bad_url_is_refused_before_any_call() {
        let mut config = ReaderConfig::local(Credentials::Token("t".into()));
        config.routing_url = "not a url".into();
        let error = Reader::connect(&config).await.err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("invalid routing URL \"not a url\""));
    }
}
