//! The catalogue's REST views against an in-process fake of its gRPC service (issue 20): how offers say they
//! are billed (`price_kind`, `billed` for every kind but `free`), the providers paginated by the gateway over
//! the catalogue's whole list, the search's `eligible=true` without a token (401, before any upstream call), and
//! unknown query parameters refused with a 400 naming them.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use id77_gateway::{AppState, Config, router};
use id77_proto::catalogue::v1 as pb;
use id77_proto::catalogue::v1::catalogue_service_server::{CatalogueService, CatalogueServiceServer};
use serde_json::Value;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};
use tower::ServiceExt;

/// Implements a service trait: the RPCs a test uses by hand, every other one answering UNIMPLEMENTED.
macro_rules! fake {
    ($service:ident for $fake:ty { $($used:tt)* } others { $($rpc:ident($req:ty) -> $resp:ty;)* }) => {
        #[tonic::async_trait]
        impl $service for $fake {
            $($used)*
            $(
                async fn $rpc(&self, _request: GrpcRequest<$req>) -> Result<GrpcResponse<$resp>, Status> {
                    Err(Status::unimplemented(concat!(stringify!($rpc), " is not used by these tests")))
                }
            )*
        }
    };
}

/// The catalogue: one offer per price kind (its id is the kind's word, priced as the catalogue prices it: the
/// legacy `billed` only when an amount is known in advance), and 45 providers in no particular order.
#[derive(Clone, Default)]
struct Catalogue(Arc<Mutex<Vec<&'static str>>>);

impl Catalogue {
    fn saw(&self, rpc: &'static str) {
        if let Ok(mut seen) = self.0.lock() {
            seen.push(rpc);
        }
    }

    fn seen(&self) -> Vec<&'static str> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

const KINDS: [(&str, pb::PriceKind, bool, i64); 5] = [
    ("free", pb::PriceKind::Free, false, 0),
    ("flat", pb::PriceKind::Flat, true, 150_000),
    ("daily_rate", pb::PriceKind::DailyRate, true, 240_000),
    ("per_inhabitant", pb::PriceKind::PerInhabitant, false, 0),
    ("on_quote", pb::PriceKind::OnQuote, false, 0),
];

fn offer(word: &str) -> Option<pb::Offer> {
    let (word, kind, billed, price_cents) = KINDS.into_iter().find(|k| k.0 == word)?;
    Some(pb::Offer {
        id: format!("0190a1b2-c3d4-7e5f-8a9b-{:012}", price_cents),
        code: format!("offre-{}", word.replace('_', "-")),
        title: format!("Offre {word}"),
        category: pb::OfferCategory::IntegratedEngineering.into(),
        billed,
        price_cents,
        price_rule: Some(pb::PriceRule {
            kind: kind.into(),
            amount_cents: 120_000,
            days: 2,
            floor_cents: 50_000,
            cap_cents: 0,
        }),
        status: pb::OfferStatus::Published.into(),
        version: 1,
        ..Default::default()
    })
}

fn providers() -> Vec<pb::Provider> {
    // 45 codes, shuffled by a stride coprime with 45.
    (0..45)
        .map(|i| (i * 17) % 45)
        .map(|n| pb::Provider {
            code: format!("prov-{n:02}"),
            name: format!("Prestataire {n}"),
            kind: pb::ProviderKind::DepartmentalService.into(),
            contact_email: format!("p{n}@seine-et-marne.fr"),
        })
        .collect()
}

fake! {
    CatalogueService for Catalogue {
        async fn get_offer(
            &self,
            request: GrpcRequest<pb::GetOfferRequest>,
        ) -> Result<GrpcResponse<pb::Offer>, Status> {
            self.saw("GetOffer");
            offer(&request.into_inner().id).map(GrpcResponse::new).ok_or_else(|| Status::not_found("no such offer"))
        }

        async fn search_offers(
            &self,
            _request: GrpcRequest<pb::SearchOffersRequest>,
        ) -> Result<GrpcResponse<pb::SearchOffersResponse>, Status> {
            self.saw("SearchOffers");
            let offers: Vec<_> = KINDS.iter().filter_map(|k| offer(k.0)).collect();
            Ok(GrpcResponse::new(pb::SearchOffersResponse { total: 5, offers, ..Default::default() }))
        }

        async fn list_providers(
            &self,
            _request: GrpcRequest<pb::ListProvidersRequest>,
        ) -> Result<GrpcResponse<pb::ListProvidersResponse>, Status> {
            self.saw("ListProviders");
            Ok(GrpcResponse::new(pb::ListProvidersResponse { providers: providers() }))
        }

        async fn archive_offer(
            &self,
            request: GrpcRequest<pb::ArchiveOfferRequest>,
        ) -> Result<GrpcResponse<pb::Offer>, Status> {
            let request = request.into_inner();
            self.saw(if request.reason.is_empty() { "ArchiveOffer without a reason" } else { "ArchiveOffer" });
            let mut offer = offer(&request.id).ok_or_else(|| Status::not_found("no such offer"))?;
            offer.status = pb::OfferStatus::Archived.into();
            Ok(GrpcResponse::new(offer))
        }
    }
    others {
        list_offers(pb::ListOffersRequest) -> pb::ListOffersResponse;
        create_offer(pb::CreateOfferRequest) -> pb::Offer;
        update_offer(pb::UpdateOfferRequest) -> pb::Offer;
        publish_offer(pb::PublishOfferRequest) -> pb::Offer;
        create_provider(pb::UpsertProviderRequest) -> pb::Provider;
        update_provider(pb::UpsertProviderRequest) -> pb::Provider;
        get_availability(pb::GetAvailabilityRequest) -> pb::Availability;
        hold_booking(pb::HoldBookingRequest) -> pb::Booking;
        confirm_booking(pb::BookingActionRequest) -> pb::Booking;
        release_booking(pb::BookingActionRequest) -> pb::Booking;
    }
}

struct Harness {
    app: Router,
    catalogue: Catalogue,
    keys: id77_platform::testing::TestKeys,
    _server: tokio::task::JoinHandle<()>,
}

async fn harness() -> Harness {
    let catalogue = Catalogue::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let service = CatalogueServiceServer::new(catalogue.clone());
    let server = tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
    });
    let keys = id77_platform::testing::TestKeys::new().unwrap_or_else(|e| panic!("{e:#}"));
    let mut config = Config::with_all_upstreams("http://127.0.0.1:1");
    config.catalogue_url = format!("http://{addr}");
    config.jwks_file = Some(keys.jwks_file.clone());
    let app = router(AppState::new(&config).unwrap_or_else(|e| panic!("{e:#}")));
    Harness { app, catalogue, keys, _server: server }
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let request = Request::get(uri).body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
    let response = match app.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn fields(problem: &Value) -> Vec<&str> {
    problem["errors"].as_array().map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn offers_say_their_price_kind_and_are_billed_unless_free() {
    let h = harness().await;
    for (word, _, _, price_cents) in KINDS {
        let (status, offer) = get(&h.app, &format!("/v1/offers/{word}")).await;
        assert_eq!(status, StatusCode::OK, "{offer}");
        assert_eq!(offer["price_kind"], word, "{offer}");
        assert_eq!(offer["price"]["kind"], word, "{offer}");
        // A document (quote, invoice) follows every kind but free, per inhabitant and on quote included.
        assert_eq!(offer["billed"], word != "free", "{offer}");
        // The amount known in advance is unchanged: 0 per inhabitant and on quote.
        assert_eq!(offer["price_cents"], price_cents, "{offer}");
    }
    let (status, page) = get(&h.app, "/v1/offers?q=voirie").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let said: Vec<(String, bool)> = items
        .iter()
        .map(|o| (o["price_kind"].as_str().unwrap_or("").to_owned(), o["billed"].as_bool().unwrap_or(false)))
        .collect();
    let expected: Vec<(String, bool)> = KINDS.iter().map(|k| (k.0.to_owned(), k.0 != "free")).collect();
    assert_eq!(said, expected);
    assert_eq!(page["corrected_q"], Value::Null);
}

#[tokio::test]
async fn providers_are_paginated_by_the_gateway_with_an_opaque_cursor() {
    let h = harness().await;
    // Default page: 20, by code.
    let (status, first) = get(&h.app, "/v1/providers").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let codes = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .map(|i| i.iter().filter_map(|p| p["code"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let expected: Vec<String> = (0..20).map(|n| format!("prov-{n:02}")).collect();
    assert_eq!(codes(&first), expected);
    let cursor = first["next_cursor"].as_str().unwrap_or_default().to_owned();
    assert!(!cursor.is_empty() && !cursor.contains("prov-"), "an opaque cursor: {cursor}");

    // Every provider once, in order, following the cursors.
    let mut all = Vec::new();
    let mut uri = "/v1/providers?limit=7".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = get(&h.app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        all.extend(codes(&page));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => uri = format!("/v1/providers?limit=7&cursor={next}"),
            None => break,
        }
        assert!(pages < 20, "the cursors never end");
    }
    assert_eq!(pages, 7);
    let expected: Vec<String> = (0..45).map(|n| format!("prov-{n:02}")).collect();
    assert_eq!(all, expected);

    // An exact last page has no next cursor.
    let (_, page) = get(&h.app, "/v1/providers?limit=45").await;
    assert_eq!((codes(&page).len(), page["next_cursor"].clone()), (45, Value::Null));

    // Bad limits and cursors are 400s naming the parameter, before any upstream call.
    let before = h.catalogue.seen().len();
    for (uri, field) in [
        ("/v1/providers?limit=0", "limit"),
        ("/v1/providers?limit=101", "limit"),
        ("/v1/providers?cursor=not-a-cursor!", "cursor"),
        ("/v1/providers?cursor=cHJvdi0wMQ", "cursor"),
    ] {
        let (status, problem) = get(&h.app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {problem}");
        assert_eq!(fields(&problem), [field], "{uri}: {problem}");
    }
    assert_eq!(h.catalogue.seen().len(), before);
}

#[tokio::test]
async fn eligible_offers_without_a_token_are_401_and_the_document_says_so() {
    let h = harness().await;
    let (status, problem) = get(&h.app, "/v1/offers?eligible=true").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert!(h.catalogue.seen().is_empty(), "the catalogue was called: {:?}", h.catalogue.seen());
    // `eligible=false` is the public search.
    let (status, _) = get(&h.app, "/v1/offers?eligible=false").await;
    assert_eq!(status, StatusCode::OK);

    let (_, doc) = get(&h.app, "/openapi.json").await;
    let search = &doc["paths"]["/v1/offers"]["get"];
    let eligible = search["parameters"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "eligible").cloned())
        .unwrap_or_default();
    assert_eq!(eligible["schema"]["type"], "boolean", "{eligible}");
    let said = eligible["description"].as_str().unwrap_or_default();
    assert!(said.contains("token") && said.contains("401"), "{said}");
    assert!(search["responses"]["401"].is_object());
}

#[tokio::test]
async fn unknown_query_parameters_are_refused_naming_them() {
    let h = harness().await;
    for uri in [
        "/v1/offers?colour=blue",
        "/v1/offers/flat?colour=blue",
        "/v1/providers?colour=blue",
        "/v1/exhibitions/x/availability?from=2026-01-01&to=2026-01-02&colour=blue",
    ] {
        let (status, problem) = get(&h.app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {problem}");
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains("colour")), "{uri}: {problem}");
    }
    assert!(h.catalogue.seen().is_empty());
}

#[tokio::test]
async fn an_optional_reason_body_may_be_absent_null_or_empty() {
    let h = harness().await;
    let operator = h.keys.token(id77_platform::auth::Role::Operator, None, None);
    for body in [None, Some("null"), Some("{}"), Some(r#"{"reason": null}"#), Some(r#"{"reason": "doublon"}"#)] {
        let mut request =
            Request::post("/v1/offers/flat/archive").header("authorization", format!("Bearer {operator}"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(body.map(|b| Body::from(b.to_owned())).unwrap_or_default());
        let response = match h.app.clone().oneshot(request.unwrap_or_else(|e| panic!("{e}"))).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    }
    let without = "ArchiveOffer without a reason";
    assert_eq!(h.catalogue.seen(), [without, without, without, without, "ArchiveOffer"]);
}
