//! Fault injection under load. While a load generator submits requests through the gateway for real communes
//! of the directory (retrying a refused submission with the same `Idempotency-Key`, the client contract), and
//! the provider's referral consumer (the real CLI, `--rule accept-all`) accepts them, the members' admins accept
//! the quotes of half of the accepted referrals through the gateway (retrying like any client) and the provider
//! reports that half done once routing knows of the member's agreement (ADR 0013), a driver SIGKILLs random
//! processes (the five services, the gateway, the referral consumer) and restarts them, restarts the NATS server
//! (a private `nats-server -js` on its own port and store, never the machine's), and blocks one service's
//! PostgreSQL database for a few seconds (`ALLOW_CONNECTIONS false` + terminating its sessions).
//!
//! Afterwards, once the platform has settled, a checker reads every service's database and the dead-letter
//! stream and asserts: every accepted submission is exactly one request with exactly one open or answered
//! referral, whose status requests follows (a completed referral's request is completed); every accepted
//! referral (a billed offer) has exactly one quote, proposed or accepted, and waits for the member's agreement
//! unless its quote was accepted; every acceptance the gateway answered is recorded and reached routing; every
//! completion the provider got acknowledged is recorded, came after the member's agreement, and — once requests
//! completed the request — has exactly one invoice, from the accepted quote; nothing else is invoiced; invoice
//! and quote numbers are gapless per issuer and year; no two live bookings of a copy overlap; no outbox row is
//! left unsent; nothing was dead-lettered. It prints the counts.
//!
//! Cluster mode (issue 17, the second test): the same load, completer and checker on a three-node NATS cluster
//! (tests/src/cluster.rs: JetStream file storage, `sync_interval: always`, the NKEY users `id77-nats-config`
//! generates) with every stream on three replicas; the faults are NATS nodes lost: kill -9 a node that is not
//! the meta leader, then the leader of REQUESTS, then the leader of REFERRALS (each restarted), then a rolling
//! restart of the three nodes one at a time, in cycles while the load runs. Probe publishers on both streams
//! show each leader election as publishers see it: the time from the kill to the next acknowledged publish.
//!
//! Short by default (the CI run); `make chaos` runs it longer: `CHAOS_DURATION_SECS` (default 45),
//! `CHAOS_REQUESTS` (default 240), `CHAOS_MEMBERS` (default 4), `CHAOS_FAULT_EVERY_MS` (default 2500),
//! `CHAOS_SEED` (default: the clock; printed, to replay a run's fault sequence), and for the cluster mode
//! `CHAOS_NATS_DOWN_MS` (default 2000: how long a killed node stays down).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use id77_e2e::cluster::NatsCluster;
use id77_e2e::load::{self, Member, Submitted};
use id77_e2e::{Api, NatsServer, Options, Platform, USER_PASSWORD};
use id77_platform::Namespace;
use id77_platform::streams::{REFERRALS, REQUESTS};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, Row};
use tokio::sync::Mutex;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift64*: a reproducible fault sequence from a printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What the fault driver did.
#[derive(Debug, Default, Clone)]
struct Faults {
    killed: BTreeMap<String, u32>,
    restarted: u32,
    /// Processes found dead without being killed (e.g. a service that could not reach NATS at start-up).
    crashed: Vec<String>,
    nats_restarts: u32,
    db_blocks: BTreeMap<String, u32>,
}

impl Faults {
    fn killed_total(&self) -> u32 {
        self.killed.values().sum()
    }
}

const SERVICES: &[&str] = &["membership", "catalogue", "requests", "routing", "billing"];

/// Restarts every process that is not running; returns the ones that were found dead.
fn revive(platform: &mut Platform, faults: &mut Faults) -> Vec<String> {
    let mut revived = Vec::new();
    for name in platform.process_names() {
        if !platform.is_running(&name) {
            match platform.restart(&name) {
                Ok(()) => {
                    faults.restarted += 1;
                    revived.push(name);
                }
                Err(error) => eprintln!("restarting {name}: {error:#}"),
            }
        }
    }
    revived
}

async fn drive_faults(
    mut platform: Platform,
    nats: Arc<Mutex<NatsServer>>,
    stop: Arc<AtomicBool>,
    seed: u64,
    every: Duration,
) -> (Platform, Faults) {
    let mut rng = Rng(seed | 1);
    let mut faults = Faults::default();
    let mut last_nats = Instant::now();
    let names = platform.process_names();
    // The first three faults are one of each kind (a NATS restart, a database block, a kill), so that even the
    // short run in CI goes through all three; then they are drawn at random.
    let mut drawn = 0u32;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(every / 2 + Duration::from_millis(rng.below(every.as_millis() as u64))).await;
        if stop.load(Ordering::SeqCst) {
            break;
        }
        // Anything that died on its own is noted and restarted, as a supervisor would.
        for name in revive(&mut platform, &mut faults) {
            faults.crashed.push(name);
        }
        let kind = match drawn {
            0 => 0,
            1 => 2,
            2 => 9,
            _ => rng.below(10),
        };
        drawn += 1;
        match kind {
            // A NATS restart at most every 12 s (the first at once): the services reconnect and the outboxes drain.
            0 | 1 if drawn == 1 || last_nats.elapsed() > Duration::from_secs(12) => {
                last_nats = Instant::now();
                let down = Duration::from_millis(500 + rng.below(1500));
                nats.lock().await.stop();
                faults.nats_restarts += 1;
                tokio::time::sleep(down).await;
                if let Err(error) = nats.lock().await.start_again().await {
                    eprintln!("nats-server did not restart: {error:#}");
                }
            }
            2 | 3 => {
                let service = SERVICES[rng.below(SERVICES.len() as u64) as usize];
                let Some(url) = platform.database_url(service).map(str::to_owned) else { continue };
                match id77_e2e::block_database(&url).await {
                    Ok(()) => {
                        *faults.db_blocks.entry(service.to_owned()).or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(1500 + rng.below(2500))).await;
                    }
                    Err(error) => eprintln!("blocking {service}'s database: {error:#}"),
                }
                // Always let it in again, even if the block half failed.
                for attempt in 0..20 {
                    match id77_e2e::allow_database(&url).await {
                        Ok(()) => break,
                        Err(error) if attempt == 19 => panic!("cannot unblock {service}'s database: {error:#}"),
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
            _ => {
                let name = names[rng.below(names.len() as u64) as usize].clone();
                if platform.is_running(&name) && platform.kill(&name).is_ok() {
                    *faults.killed.entry(name.clone()).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(200 + rng.below(1500))).await;
                    if platform.restart(&name).is_ok() {
                        faults.restarted += 1;
                    }
                }
            }
        }
    }
    // The end of the faults: everything up again.
    if !nats.lock().await.is_running() {
        nats.lock().await.start_again().await.expect("nats-server restarts");
    }
    for _ in 0..3 {
        for name in revive(&mut platform, &mut faults) {
            faults.crashed.push(name);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (platform, faults)
}

/// How the test's own clients (the completer, the checker) reach NATS.
#[derive(Debug, Clone)]
struct NatsAccess {
    url: String,
    prefix: String,
    /// A platform service's NKEY seed, for the checker (None: the server asks for no authentication).
    service_nkey: Option<PathBuf>,
    /// The provider's NKEY seed, for the completer.
    provider_nkey: Option<PathBuf>,
}

impl NatsAccess {
    /// The platform's own NATS, without authentication (a private `nats-server -js`).
    fn open(platform: &Platform) -> Self {
        Self {
            url: platform.nats_url.clone(),
            prefix: platform.prefix.clone(),
            service_nkey: None,
            provider_nkey: None,
        }
    }
}

/// What the members' admins and the provider's side that is not the consumer CLI did.
#[derive(Debug, Default, Clone)]
struct Completer {
    /// Referrals whose completion JetStream acknowledged.
    completions: HashSet<String>,
    /// Referrals whose quote a member's admin accepted through the gateway (answered 200, or found accepted after
    /// an answer was lost).
    agreed: HashSet<String>,
    /// Answers no client should get while accepting a quote (a 4xx other than 401, 408, 409, 429; a quote found
    /// refused, voided or expired).
    refused: Vec<String>,
    /// Referrals given up on after such an answer (not retried; the checker reports the answer).
    skipped: HashSet<String>,
    /// Referrals of the half to complete that the completer gave up on.
    unfinished: Vec<String>,
}

/// What became of one attempt to accept a referral's quote.
enum Agreement {
    /// The quote is accepted.
    Done,
    /// Not yet: no quote yet, or the gateway or the network refused the attempt (5xx, 429, timeouts, 401).
    Later,
    /// An answer no retry will change.
    Refused(String),
}

/// The member's admin accepts the quote of `referral_id` through the gateway, as a client would: it lists the
/// request's quotes, and accepts the referral's quote if it is still proposed. One attempt; the caller retries.
async fn accept_quote_of(api: &Api, member: &mut Member, request_id: &str, referral_id: &str) -> Agreement {
    let listed = api
        .http
        .get(format!("{}/v1/quotes?request_id={request_id}", api.base))
        .bearer_auth(&member.token)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    let page = match listed {
        Ok(response) if response.status() == StatusCode::OK => response.json::<Value>().await.unwrap_or_default(),
        Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
            if let Ok(token) = api.access_token(&member.email, USER_PASSWORD).await {
                member.token = token;
            }
            return Agreement::Later;
        }
        Ok(_) | Err(_) => return Agreement::Later,
    };
    let Some(quote) = page["items"].as_array().and_then(|q| q.iter().find(|q| q["referral_id"] == referral_id)) else {
        return Agreement::Later; // billing has not quoted the acceptance yet
    };
    match quote["status"].as_str() {
        Some("accepted") => return Agreement::Done,
        Some("proposed") => {}
        other => return Agreement::Refused(format!("the quote of referral {referral_id} is {other:?}: {quote}")),
    }
    let Some(quote_id) = quote["id"].as_str() else {
        return Agreement::Refused(format!("a quote without id: {quote}"));
    };
    let sent = api
        .http
        .post(format!("{}/v1/quotes/{quote_id}/accept", api.base))
        .bearer_auth(&member.token)
        .timeout(Duration::from_secs(10))
        .json(&json!({"signatory_name": "Le maire", "purchase_order_number": format!("EJ-{}", &referral_id[..8])}))
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Agreement::Done,
        Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
            if let Ok(token) = api.access_token(&member.email, USER_PASSWORD).await {
                member.token = token;
            }
            Agreement::Later
        }
        // 409: decided meanwhile (an earlier attempt whose answer was lost): the next listing says how.
        Ok(response)
            if response.status().is_client_error()
                && !matches!(
                    response.status(),
                    StatusCode::CONFLICT | StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS
                ) =>
        {
            let status = response.status();
            Agreement::Refused(format!(
                "accepting quote {quote_id} of referral {referral_id}: {status} {}",
                response.text().await.unwrap_or_default()
            ))
        }
        Ok(_) | Err(_) => Agreement::Later,
    }
}

/// The provider's side that is not the consumer CLI, and the members' admins: on half of the accepted referrals
/// (those whose id ends with an even hex digit), once routing has recorded the acceptance, the member's admin
/// accepts the quote through the gateway (retrying refused attempts); once routing has recorded the member's
/// agreement, the provider reports the work done, republishing until JetStream acknowledges. Gives up on what is
/// left two minutes after `stop`.
async fn complete_half(
    nats: NatsAccess,
    provider: String,
    routing_db: String,
    gateway: String,
    members: Vec<Member>,
    stop: Arc<AtomicBool>,
) -> Completer {
    let api = Api::new(&gateway);
    let mut members: HashMap<String, Member> = members.into_iter().map(|m| (m.id.clone(), m)).collect();
    let mut done = Completer::default();
    let mut consumer = None;
    let mut stopped_at: Option<Instant> = None;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if stopping {
            stopped_at.get_or_insert_with(Instant::now);
        }
        if consumer.is_none() {
            let mut config = id77_referral_consumer::Config::new(nats.url.clone(), provider.clone()).expect("config");
            config.prefix = nats.prefix.clone();
            if let Some(seed) = &nats.provider_nkey {
                // The provider's own user: it may neither create the stream nor its durable consumer.
                config.nkey_file = Some(seed.clone());
                config.ensure_stream = false;
                config.create_consumer = false;
            }
            consumer = tokio::time::timeout(
                Duration::from_secs(15),
                id77_referral_consumer::ReferralConsumer::connect(config),
            )
            .await
            .ok()
            .and_then(Result::ok);
        }
        // (referral, request, member, agreement)
        let accepted: Vec<(String, String, String, String)> = match PgConnection::connect(&routing_db).await {
            Ok(mut conn) => {
                let rows = sqlx::query(
                    "SELECT id::text AS id, request_id::text AS request_id, member_id::text AS member_id, agreement \
                     FROM referral WHERE status = 'accepted' AND completed_at IS NULL",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
                let _ = conn.close().await;
                rows.iter()
                    .map(|r| (r.get("id"), r.get("request_id"), r.get("member_id"), r.get("agreement")))
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        let todo: Vec<&(String, String, String, String)> =
            accepted.iter().filter(|(id, ..)| completes(id) && !done.completions.contains(id)).collect();
        for (id, request_id, member_id, agreement) in todo {
            // The member's agreement first (a billed offer: routing waits for billing's `quote.accepted`).
            if agreement == "awaiting_member" {
                if done.agreed.contains(id) || done.skipped.contains(id) {
                    continue; // accepted, routing has not heard of it yet; or given up
                }
                let Some(member) = members.get_mut(member_id) else {
                    done.refused.push(format!("referral {id} of an unknown member {member_id}"));
                    done.skipped.insert(id.clone());
                    continue;
                };
                match accept_quote_of(&api, member, request_id, id).await {
                    Agreement::Done => {
                        done.agreed.insert(id.clone());
                    }
                    Agreement::Later => {}
                    Agreement::Refused(why) => {
                        done.refused.push(why);
                        done.skipped.insert(id.clone());
                    }
                }
                continue;
            }
            // Agreed (or, wrongly, not required: the checker reports it): the provider reports the work done.
            if let Some(consumer) = &consumer
                && let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(5), consumer.complete(id)).await
            {
                done.completions.insert(id.clone());
            }
        }
        let left: Vec<&String> = accepted
            .iter()
            .map(|(id, ..)| id)
            .filter(|id| completes(id) && !done.completions.contains(*id) && !done.skipped.contains(*id))
            .collect();
        if stopping && left.is_empty() {
            break;
        }
        if stopped_at.is_some_and(|at| at.elapsed() > Duration::from_secs(120)) {
            done.unfinished = left.into_iter().cloned().collect();
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if let Some(consumer) = consumer {
        consumer.close().await;
    }
    done
}

fn completes(referral_id: &str) -> bool {
    referral_id.chars().last().and_then(|c| c.to_digit(16)).is_some_and(|d| d % 2 == 0)
}

/// What the databases say, and what is wrong with it.
#[derive(Debug, Default)]
struct Check {
    requests: usize,
    referrals_open_or_answered: usize,
    accepted_referrals: usize,
    /// Accepted referrals routing lets the provider work on (the member agreed to the quote).
    agreed_referrals: usize,
    quotes: usize,
    quotes_accepted: usize,
    completed: usize,
    invoices: usize,
    outbox_pending: i64,
    dead_letters: Vec<String>,
    lost: Vec<String>,
    duplicated: Vec<String>,
    other: Vec<String>,
}

impl Check {
    fn clean(&self) -> bool {
        self.lost.is_empty() && self.duplicated.is_empty() && self.other.is_empty() && self.outbox_pending == 0
    }
}

async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    Ok(PgConnection::connect(url).await?)
}

async fn check(
    platform: &Platform,
    submitted: &[Submitted],
    completer: &Completer,
    dead_letters: Vec<String>,
) -> anyhow::Result<Check> {
    let db = |s: &str| platform.database_url(s).map(str::to_owned).ok_or_else(|| anyhow::anyhow!("no {s} db"));
    let mut c = Check { dead_letters, ..Check::default() };

    // The gateway's answers: one request id per key.
    let mut by_key: HashMap<(&str, &str), HashSet<&str>> = HashMap::new();
    for s in submitted {
        if let Some(id) = &s.request_id {
            by_key.entry((&s.member_id, &s.key)).or_default().insert(id);
        }
    }
    for ((member, key), ids) in &by_key {
        if ids.len() > 1 {
            c.duplicated.push(format!("key {key} of member {member} answered with {} request ids", ids.len()));
        }
    }
    let answered: HashSet<&str> = by_key.values().flatten().copied().collect();

    let mut requests = connect(&db("requests")?).await?;
    let rows = sqlx::query("SELECT id::text AS id, member_id::text AS m, idempotency_key AS k, status FROM request")
        .fetch_all(&mut requests)
        .await?;
    c.requests = rows.len();
    let request_status: HashMap<String, String> =
        rows.iter().map(|r| (r.get::<String, _>("id"), r.get::<String, _>("status"))).collect();
    let mut rows_per_key: HashMap<(String, Option<String>), u32> = HashMap::new();
    for r in &rows {
        *rows_per_key.entry((r.get("m"), r.get("k"))).or_default() += 1;
    }
    for ((member, key), n) in rows_per_key {
        if n > 1 && key.is_some() {
            c.duplicated.push(format!("{n} requests of member {member} with key {key:?}"));
        }
    }
    for id in &answered {
        if !request_status.contains_key(*id) {
            c.lost.push(format!("request {id} answered by the gateway is not in the requests database"));
        }
    }

    let mut routing = connect(&db("routing")?).await?;
    let referrals = sqlx::query(
        "SELECT id::text AS id, request_id::text AS request_id, status, completed_at IS NOT NULL AS completed, \
         agreement FROM referral WHERE status IN ('offered', 'accepted', 'declined')",
    )
    .fetch_all(&mut routing)
    .await?;
    c.referrals_open_or_answered = referrals.len();
    let mut per_request: HashMap<String, u32> = HashMap::new();
    let mut accepted = HashSet::new();
    let mut completed = HashSet::new();
    // The referral's request, and routing's word on the member's agreement, by referral.
    let mut request_of: HashMap<String, String> = HashMap::new();
    let mut agreement: HashMap<String, String> = HashMap::new();
    for r in &referrals {
        let id: String = r.get("id");
        *per_request.entry(r.get("request_id")).or_default() += 1;
        request_of.insert(id.clone(), r.get("request_id"));
        agreement.insert(id.clone(), r.get("agreement"));
        if r.get::<String, _>("status") == "accepted" {
            accepted.insert(id.clone());
        }
        if r.get::<bool, _>("completed") {
            completed.insert(id);
        }
    }
    c.accepted_referrals = accepted.len();
    c.agreed_referrals = accepted.iter().filter(|id| agreement.get(*id).is_some_and(|a| a == "agreed")).count();
    c.completed = completed.len();
    for id in request_status.keys() {
        match per_request.get(id).copied().unwrap_or(0) {
            0 => c.lost.push(format!("request {id} has no open or answered referral")),
            1 => {}
            n => c.duplicated.push(format!("request {id} has {n} open or answered referrals")),
        }
    }
    for r in &referrals {
        let (id, request_id, status): (String, String, String) = (r.get("id"), r.get("request_id"), r.get("status"));
        let done = completed.contains(&id);
        // The requests service follows the decision (accepted/declined) and, as the arbiter of the request's
        // fate (ADR 0013), completes the request on the provider's completion: a completed referral's request is
        // completed, an accepted one's is accepted (nobody reports progress here).
        let in_requests = request_status.get(&request_id).map(String::as_str);
        let follows = match (status.as_str(), in_requests) {
            ("offered", _) => true,
            ("accepted", Some("completed")) => done,
            ("accepted", Some("accepted" | "in_progress")) => !done,
            (decided, Some(seen)) => decided == seen,
            (_, None) => false,
        };
        if !follows {
            let what = if done { " (completed)" } else { "" };
            c.lost.push(format!(
                "request {request_id} is {in_requests:?} in requests, its referral {status}{what} in routing"
            ));
        }
        if status == "offered" {
            c.other.push(format!("referral of request {request_id} still unanswered by an accept-all consumer"));
        }
        // Every offer of the load is billed: an accepted referral waits for the member's agreement until its
        // quote is accepted, and is completed only after it.
        let agreement = agreement.get(&id).map(String::as_str).unwrap_or_default();
        if status == "accepted" && !matches!(agreement, "awaiting_member" | "agreed") {
            c.other.push(format!("accepted referral {id} of a billed offer: agreement {agreement:?}"));
        }
        if done && agreement != "agreed" {
            c.other.push(format!("referral {id} completed without the member's agreement ({agreement:?})"));
        }
    }
    for id in &completer.completions {
        if !completed.contains(id) {
            c.lost.push(format!("completion of referral {id}, acknowledged by JetStream, is not recorded"));
        }
    }
    for id in &completer.unfinished {
        c.lost.push(format!(
            "referral {id} of the half to complete was never completed (agreement {:?})",
            agreement.get(id)
        ));
    }
    for why in &completer.refused {
        c.other.push(format!("the member's acceptance of a quote was refused: {why}"));
    }

    let mut billing = connect(&db("billing")?).await?;
    let quotes =
        sqlx::query("SELECT id::text AS id, referral_id::text AS r, status FROM quote").fetch_all(&mut billing).await?;
    c.quotes = quotes.len();
    let mut quotes_per_referral: HashMap<String, u32> = HashMap::new();
    // The referral's quote: (id, status).
    let mut quote_of: HashMap<String, (String, String)> = HashMap::new();
    for q in &quotes {
        *quotes_per_referral.entry(q.get("r")).or_default() += 1;
        quote_of.insert(q.get("r"), (q.get("id"), q.get("status")));
    }
    c.quotes_accepted = quote_of.values().filter(|(_, status)| status == "accepted").count();
    for id in &accepted {
        match quotes_per_referral.get(id).copied().unwrap_or(0) {
            0 => c.lost.push(format!("accepted referral {id} has no quote")),
            1 => {}
            n => c.duplicated.push(format!("referral {id} has {n} quotes")),
        }
        let Some((quote_id, quote_status)) = quote_of.get(id) else { continue };
        let agreed = agreement.get(id).is_some_and(|a| a == "agreed");
        match quote_status.as_str() {
            // Nothing is cancelled, refused or expired here: the quote is proposed or accepted.
            "proposed" if completed.contains(id) || agreed => c.other.push(format!(
                "referral {id} is {} while its quote {quote_id} is still proposed",
                if completed.contains(id) { "completed" } else { "agreed" }
            )),
            "proposed" => {}
            // Routing applies billing's `quote.accepted`.
            "accepted" if !agreed => {
                c.lost.push(format!("quote {quote_id} is accepted, but routing still waits for it on referral {id}"))
            }
            "accepted" => {}
            other => c.other.push(format!("quote {quote_id} of accepted referral {id} is {other}")),
        }
    }
    for id in &completer.agreed {
        if quote_of.get(id).is_none_or(|(_, status)| status != "accepted") {
            c.lost
                .push(format!("the quote of referral {id}, accepted through the gateway, is not accepted in billing"));
        }
    }
    let invoices =
        sqlx::query("SELECT referral_id::text AS r, quote_id::text AS q FROM invoice").fetch_all(&mut billing).await?;
    c.invoices = invoices.len();
    let mut invoices_per_referral: HashMap<String, u32> = HashMap::new();
    for i in &invoices {
        let (referral, quote): (String, Option<String>) = (i.get("r"), i.get("q"));
        *invoices_per_referral.entry(referral.clone()).or_default() += 1;
        // Billing invoices the accepted quote of a request that requests completed, nothing else.
        if !completed.contains(&referral) {
            c.other.push(format!("referral {referral} is invoiced but not completed"));
        }
        match (quote, quote_of.get(&referral)) {
            (Some(q), Some((id, status))) if q == *id && status == "accepted" => {}
            (quote, found) => c.other.push(format!(
                "the invoice of referral {referral} bills quote {quote:?}; the referral's quote is {found:?}"
            )),
        }
    }
    for id in &completed {
        let request_completed =
            request_of.get(id).and_then(|r| request_status.get(r)).is_some_and(|s| s == "completed");
        match invoices_per_referral.get(id).copied().unwrap_or(0) {
            // Billing invoices on requests' `request.completed`: not before (reported above as not followed).
            0 if request_completed => c.lost.push(format!("completed referral {id} has no invoice")),
            0 | 1 => {}
            n => c.duplicated.push(format!("referral {id} has {n} invoices")),
        }
    }
    for table in ["invoice", "quote"] {
        let gaps = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT issuer_code, year, count(*) AS n, min(sequence) AS lo, max(sequence) AS hi FROM {table} \
             GROUP BY issuer_code, year HAVING min(sequence) <> 1 OR max(sequence) <> count(*)"
        )))
        .fetch_all(&mut billing)
        .await?;
        for g in gaps {
            c.other.push(format!(
                "{table} numbers of {} in {} are not gapless: {} numbers from {} to {}",
                g.get::<String, _>("issuer_code"),
                g.get::<i32, _>("year"),
                g.get::<i64, _>("n"),
                g.get::<i64, _>("lo"),
                g.get::<i64, _>("hi")
            ));
        }
    }

    let mut catalogue = connect(&db("catalogue")?).await?;
    let overlaps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM booking a JOIN booking b ON a.copy_id = b.copy_id AND a.id < b.id \
         AND a.period && b.period WHERE a.status <> 'released' AND b.status <> 'released'",
    )
    .fetch_one(&mut catalogue)
    .await?;
    if overlaps > 0 {
        c.other.push(format!("{overlaps} overlapping live bookings"));
    }

    for service in SERVICES {
        let mut conn = connect(&db(service)?).await?;
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetch_one(&mut conn).await?;
        c.outbox_pending += pending;
        let _ = conn.close().await;
    }
    for letter in &c.dead_letters {
        c.other.push(format!("dead letter: {letter}"));
    }
    Ok(c)
}

/// Every message on the dead-letter stream: its subject, original subject and reason.
async fn dead_letters(nats: &NatsAccess) -> anyhow::Result<Vec<String>> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull};
    use futures::StreamExt;
    let (_, js) = id77_platform::nats::connect_with(&nats.url, "chaos-checker", nats.service_nkey.as_deref()).await?;
    let ns = id77_platform::Namespace::new(nats.prefix.clone());
    let name = ns.stream(id77_platform::streams::DEADLETTER.name);
    let Ok(mut stream) = js.get_stream(&name).await else {
        return Ok(Vec::new()); // never created: nothing was dead-lettered
    };
    let count = stream.info().await?.state.messages;
    let mut found = Vec::new();
    if count == 0 {
        return Ok(found);
    }
    let consumer =
        stream.create_consumer(pull::Config { deliver_policy: DeliverPolicy::All, ..Default::default() }).await?;
    let mut messages = consumer.fetch().max_messages(count as usize).messages().await?;
    while let Some(Ok(message)) = messages.next().await {
        let header = |k: &str| {
            message.headers.as_ref().and_then(|h| h.get(k)).map(|v| v.as_str().to_owned()).unwrap_or_default()
        };
        found.push(format!(
            "{} (from {}): {}",
            message.subject,
            header("Id77-Original-Subject"),
            header("Id77-Dead-Letter-Reason")
        ));
    }
    Ok(found)
}

/// The run's size and pace, from the environment (`make chaos` raises them).
struct Settings {
    duration: Duration,
    total: u64,
    member_count: usize,
    every: Duration,
    seed: u64,
}

impl Settings {
    fn from_env() -> Self {
        Self {
            duration: Duration::from_secs(env_u64("CHAOS_DURATION_SECS", 45)),
            total: env_u64("CHAOS_REQUESTS", 240),
            member_count: env_u64("CHAOS_MEMBERS", 4) as usize,
            every: Duration::from_millis(env_u64("CHAOS_FAULT_EVERY_MS", 2500)),
            seed: env_u64(
                "CHAOS_SEED",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(7),
            ),
        }
    }
}

/// Real communes join as members; returns them with a billed offer and its provider.
async fn join(api: &Api, member_count: usize) -> (Vec<Member>, String, String) {
    let members = load::join_communes(api, member_count).await.expect("communes join");
    let (offer_id, provider) = load::billed_offer(api, "integrated_engineering").await.expect("a billed offer");
    (members, offer_id, provider)
}

/// Requests learns of the approvals by event: waits until each member can submit (these count as load too).
async fn warm_up(api: &Api, members: Vec<Member>, offer_id: &str) -> (Vec<Submitted>, Vec<Member>) {
    let mut submitted = Vec::new();
    let mut members_ready = Vec::new();
    for (i, mut member) in members.into_iter().enumerate() {
        let body = load::request_body(offer_id, i as u64);
        let started = Instant::now();
        loop {
            let s = load::submit(api, &mut member, &format!("warmup-{i}"), &body, Duration::from_secs(20)).await;
            if s.request_id.is_some() {
                submitted.push(s);
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "member {} never allowed to submit: {s:?}",
                member.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        members_ready.push(member);
    }
    (submitted, members_ready)
}

/// The load: `total` submissions paced over `duration`, at most 16 in flight. Returns them and how long it took.
async fn submit_load(
    gateway: &str,
    members: &[Member],
    offer_id: &str,
    total: u64,
    duration: Duration,
) -> (Vec<Submitted>, Duration) {
    let started = Instant::now();
    let gap = duration / total.max(1) as u32;
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    for n in 0..total {
        let permit = limit.clone().acquire_owned().await.expect("semaphore");
        let mut member: Member = members[n as usize % members.len()].clone();
        let (api, body) = (Api::new(gateway), load::request_body(offer_id, n));
        tasks.push(tokio::spawn(async move {
            let s = load::submit(&api, &mut member, &format!("chaos-{n}"), &body, Duration::from_secs(120)).await;
            drop(permit);
            s
        }));
        let next = gap * (n as u32 + 1);
        if let Some(wait) = next.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    let mut submitted = Vec::new();
    for task in tasks {
        submitted.push(task.await.expect("submission task"));
    }
    (submitted, started.elapsed())
}

/// Settle: the accept-all consumer answers everything, the members accept their half of the quotes, the
/// completer reports that half done, the outboxes drain. Returns the checker's last word and how long it took.
async fn settle(
    platform: &Platform,
    submitted: &[Submitted],
    completer: tokio::task::JoinHandle<Completer>,
    stop_completing: &AtomicBool,
    nats: &NatsAccess,
) -> (Check, Duration) {
    let settle_started = Instant::now();
    let mut completions_done = None;
    let mut completer = Some(completer);
    loop {
        let referrals_settled = {
            let mut conn = connect(platform.database_url("routing").expect("routing")).await.expect("routing db");
            let open: i64 = sqlx::query_scalar("SELECT count(*) FROM referral WHERE status = 'offered'")
                .fetch_one(&mut conn)
                .await
                .expect("open referrals");
            open == 0
        };
        if referrals_settled && completions_done.is_none() {
            stop_completing.store(true, Ordering::SeqCst);
            if let Some(task) = completer.take() {
                completions_done = Some(task.await.expect("completer"));
            }
        }
        let completer = completions_done.clone().unwrap_or_default();
        let letters = dead_letters(nats).await.expect("dead letters");
        let result = check(platform, submitted, &completer, letters).await.expect("checker reads the databases");
        if (result.clean() && completions_done.is_some()) || settle_started.elapsed() > Duration::from_secs(90) {
            return (result, settle_started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Prints the counts, with `faults` (what the driver did, one line each) after the load's lines.
fn report(
    title: &str,
    submitted: &[Submitted],
    load_time: Duration,
    faults: &[String],
    result: &Check,
    settled: Duration,
    platform: &Platform,
) {
    let accepted = submitted.iter().filter(|s| s.request_id.is_some()).count();
    let refused = submitted.iter().filter(|s| s.refused.is_some()).count();
    let rejected: u32 = submitted.iter().map(|s| s.rejected_attempts).sum();
    let retried = submitted.iter().filter(|s| s.rejected_attempts > 0).count();
    eprintln!("{title}:");
    eprintln!(
        "  submitted {} in {load_time:.1?}; accepted by the gateway {accepted}; refused for good {refused}",
        submitted.len()
    );
    eprintln!(
        "  attempts rejected (5xx, 429, 401, connection errors) and retried with the same key: {rejected}, on {retried} submissions"
    );
    for line in faults {
        eprintln!("  {line}");
    }
    eprintln!(
        "  requests {}, open or answered referrals {}, accepted {} (agreed {}), quotes {} (accepted {}), completed {}, \
         invoices {}",
        result.requests,
        result.referrals_open_or_answered,
        result.accepted_referrals,
        result.agreed_referrals,
        result.quotes,
        result.quotes_accepted,
        result.completed,
        result.invoices
    );
    eprintln!(
        "  outbox rows unsent {}; dead letters {}; settled in {settled:.1?}",
        result.outbox_pending,
        result.dead_letters.len()
    );
    eprintln!("  lost {}; duplicated {}", result.lost.len(), result.duplicated.len());
    for line in result.lost.iter().chain(&result.duplicated).chain(&result.other).take(30) {
        eprintln!("    {line}");
    }
    eprintln!("  logs: {}", platform.logs.display());
}

/// What the checker must find after any run: nothing lost, duplicated or left unsent, and work done.
fn assert_clean(submitted: &[Submitted], result: &Check) {
    let accepted = submitted.iter().filter(|s| s.request_id.is_some()).count();
    let refused: Vec<_> = submitted.iter().filter_map(|s| s.refused.clone()).collect();
    assert!(refused.is_empty(), "submissions refused for good: {refused:?}");
    assert_eq!(result.requests, accepted, "one request per accepted submission");
    assert!(result.lost.is_empty(), "lost: {:?}", result.lost);
    assert!(result.duplicated.is_empty(), "duplicated: {:?}", result.duplicated);
    assert!(result.other.is_empty(), "{:?}", result.other);
    assert_eq!(result.outbox_pending, 0, "outbox rows left unsent");
    assert!(result.completed > 0 && result.invoices == result.completed, "{result:?}");
    assert!(result.quotes_accepted >= result.completed && result.agreed_referrals >= result.completed, "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_submission_is_lost_or_duplicated_under_kills_nats_restarts_and_database_outages() {
    let Settings { duration, total, member_count, every, seed } = Settings::from_env();
    eprintln!(
        "chaos: seed {seed}, {total} requests over {duration:?}, {member_count} members, a fault every ~{every:?}"
    );

    let store = std::env::temp_dir().join(format!("id77-chaos-nats-{}", uuid::Uuid::new_v4().simple()));
    let nats = NatsServer::start(&store).await.expect("private nats-server starts");
    let options = Options {
        nats_url: Some(nats.url.clone()),
        gateway_env: vec![("ID77_RATE_LIMIT_PER_MINUTE".into(), "0".into())],
        ..Options::default()
    };
    let mut platform = Platform::start_with(options).await.expect("platform starts");
    let api = Api::new(&platform.gateway);
    let (members, offer_id, provider) = join(&api, member_count).await;
    platform.start_referral_consumer(&provider, &["--rule", "accept-all"]).expect("referral consumer");
    let (mut submitted, members_ready) = warm_up(&api, members, &offer_id).await;

    let nats = Arc::new(Mutex::new(nats));
    let stop_faults = Arc::new(AtomicBool::new(false));
    let stop_completing = Arc::new(AtomicBool::new(false));
    let access = NatsAccess::open(&platform);
    let routing_db = platform.database_url("routing").expect("routing db").to_owned();
    let completer = tokio::spawn(complete_half(
        access.clone(),
        provider.clone(),
        routing_db,
        platform.gateway.clone(),
        members_ready.clone(),
        stop_completing.clone(),
    ));
    let gateway = platform.gateway.clone();
    let driver = tokio::spawn(drive_faults(platform, nats.clone(), stop_faults.clone(), seed, every));

    let (load, load_time) = submit_load(&gateway, &members_ready, &offer_id, total, duration).await;
    submitted.extend(load);
    stop_faults.store(true, Ordering::SeqCst);
    let (mut platform, faults) = driver.await.expect("fault driver");
    platform.wait_ready(Duration::from_secs(60)).await.expect("platform ready after the faults");

    let (result, settled) = settle(&platform, &submitted, completer, &stop_completing, &access).await;
    let faults_line = format!(
        "killed {} {:?}; restarted {}; died on their own {:?}; NATS restarts {}; database blocks {:?}",
        faults.killed_total(),
        faults.killed,
        faults.restarted,
        faults.crashed,
        faults.nats_restarts,
        faults.db_blocks
    );
    report(&format!("chaos report (seed {seed})"), &submitted, load_time, &[faults_line], &result, settled, &platform);
    assert_clean(&submitted, &result);
    assert!(faults.killed_total() > 0 && faults.restarted > 0, "the driver must have killed something: {faults:?}");
    assert!(faults.nats_restarts > 0, "the driver must have restarted NATS: {faults:?}");
    assert!(!faults.db_blocks.is_empty(), "the driver must have blocked a database: {faults:?}");
    platform.stop().await;
    drop(nats);
}

// -------------------------------------------------------------------------------------------------------------
// Cluster mode (issue 17): the same load and checker on a three-node NATS cluster with three stream replicas,
// whose nodes are lost one at a time.
// -------------------------------------------------------------------------------------------------------------

/// The streams the probes publish to (logical names), the probe subject on each, and the service user that may
/// publish there (`id77-nats-config`: a service publishes only its own subjects): no consumer of the platform
/// reads it (their filters name their events; the providers' read `...<code>.offered` of their own code, and there
/// is no provider `chaos-probe`; routing reads `....*.reply`).
const PROBED: [(&str, &str, &str); 2] = [
    (REQUESTS.name, "id77.requests.chaos-probe", "requests"),
    (REFERRALS.name, "id77.referrals.chaos-probe.offered", "routing"),
];

/// (sent, acknowledged) of every probe publish, in sending order.
type ProbeLog = Arc<std::sync::Mutex<Vec<(Instant, Option<Instant>)>>>;

/// A publisher that shows how long a stream took no message, as the platform's publishers see it: every 50 ms it
/// publishes to a probe subject of the stream (a client of its own, every node's URL, a service user) and notes
/// when JetStream acknowledged each message.
struct Probe {
    /// The stream's logical name.
    stream: &'static str,
    log: ProbeLog,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Probe {
    const EVERY: Duration = Duration::from_millis(50);

    async fn start(cluster: &NatsCluster, stream: &'static str, subject: &str, user: &str) -> Self {
        let (_, js) = cluster.connect(user).await.expect("the probe connects to the cluster");
        let subject = Namespace::new(cluster.prefix.clone()).subject(subject);
        let log = ProbeLog::default();
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (log, stop) = (log.clone(), stop.clone());
            async move {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let sent = Instant::now();
                    let index = {
                        let mut log = log.lock().expect("probe log");
                        log.push((sent, None));
                        log.len() - 1
                    };
                    let (js, log, subject) = (js.clone(), log.clone(), subject.clone());
                    // Each publish waits for its own acknowledgement: one lost in an election delays no other.
                    tokio::spawn(async move {
                        let publish = async {
                            let ack = js.publish(subject, n.to_string().into()).await?;
                            ack.await
                        };
                        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(10), publish).await {
                            log.lock().expect("probe log")[index].1 = Some(Instant::now());
                        }
                    });
                    n += 1;
                    tokio::time::sleep(Self::EVERY).await;
                }
            }
        });
        Self { stream, log, stop, task }
    }

    /// How long after `at` the first message published at or after `at` was acknowledged (None: none was).
    fn recovery_after(&self, at: Instant) -> Option<Duration> {
        let log = self.log.lock().expect("probe log");
        log.iter().filter(|(sent, _)| *sent >= at).filter_map(|(_, acked)| *acked).min().map(|acked| acked - at)
    }

    /// Messages published and acknowledged.
    fn counts(&self) -> (usize, usize) {
        let log = self.log.lock().expect("probe log");
        (log.len(), log.iter().filter(|(_, acked)| acked.is_some()).count())
    }

    async fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        while !self.task.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The last publishes' acknowledgements.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How a node was taken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Down {
    /// SIGKILL, a node that is not the meta leader.
    Follower,
    /// SIGKILL, the node that leads this stream (logical name).
    StreamLeader(&'static str),
    /// SIGTERM then a start, one node after the other.
    Rolling,
}

/// One node lost and brought back.
#[derive(Debug, Clone)]
struct NodeFault {
    kind: Down,
    node: String,
    /// When it was killed (or sent SIGTERM).
    at: Instant,
    /// Kill to restart.
    down: Duration,
    /// Restart to the whole cluster healthy again (`/healthz` on every node, one meta leader); None: not within
    /// a minute.
    healed: Option<Duration>,
    meta_before: Option<String>,
    /// Leaders of the probed streams (logical name, leader) before the fault and once healed.
    leaders_before: Vec<(&'static str, Option<String>)>,
    leaders_after: Vec<(&'static str, Option<String>)>,
}

impl NodeFault {
    fn leader_before(&self, stream: &str) -> Option<&str> {
        self.leaders_before.iter().find(|(s, _)| *s == stream).and_then(|(_, l)| l.as_deref())
    }

    fn leader_after(&self, stream: &str) -> Option<&str> {
        self.leaders_after.iter().find(|(s, _)| *s == stream).and_then(|(_, l)| l.as_deref())
    }

    fn describe(&self) -> String {
        match self.kind {
            Down::Follower => {
                let led: Vec<&str> = self
                    .leaders_before
                    .iter()
                    .filter(|(_, l)| l.as_deref() == Some(self.node.as_str()))
                    .map(|(s, _)| *s)
                    .collect();
                format!(
                    "kill -9 {} (not the meta leader, {}; {})",
                    self.node,
                    self.meta_before.as_deref().unwrap_or("unknown"),
                    if led.is_empty() { "no probed stream's leader".to_owned() } else { format!("leader of {led:?}") }
                )
            }
            Down::StreamLeader(stream) => format!("kill -9 {} (leader of {stream})", self.node),
            Down::Rolling => format!("rolling restart: SIGTERM {}", self.node),
        }
    }
}

/// What the cluster-mode driver did.
#[derive(Debug, Default)]
struct ClusterFaults {
    nodes: Vec<NodeFault>,
    /// Services restarted because they were found dead (none are killed in this mode).
    services: Faults,
}

/// Takes `node` down (SIGKILL, or SIGTERM for a rolling restart), starts it again after `down`, and waits until
/// the cluster is healthy again.
async fn node_fault(cluster: &Mutex<NatsCluster>, ns: &Namespace, node: &str, kind: Down, down: Duration) -> NodeFault {
    let mut cluster = cluster.lock().await;
    let leaders = async |cluster: &NatsCluster| {
        let mut leaders = Vec::new();
        for (stream, _, _) in PROBED {
            leaders.push((stream, cluster.stream_leader(&ns.stream(stream)).await));
        }
        leaders
    };
    let meta_before = cluster.meta_leader().await;
    let leaders_before = leaders(&cluster).await;
    let at = Instant::now();
    match kind {
        Down::Rolling => cluster.terminate(node).await,
        Down::Follower | Down::StreamLeader(_) => cluster.kill9(node),
    }
    .unwrap_or_else(|e| panic!("taking {node} down: {e:#}"));
    tokio::time::sleep(down).await;
    let restarted = Instant::now();
    if let Err(error) = cluster.restart(node).await {
        eprintln!("nats-server {node} did not restart: {error:#}");
    }
    let healed = match cluster.wait_healthy(Duration::from_secs(60)).await {
        Ok(_) => Some(restarted.elapsed()),
        Err(error) => {
            eprintln!("after {node}'s restart: {error:#}");
            None
        }
    };
    let leaders_after = leaders(&cluster).await;
    NodeFault {
        kind,
        node: node.to_owned(),
        at,
        down: restarted - at,
        healed,
        meta_before,
        leaders_before,
        leaders_after,
    }
}

/// The cluster-mode faults, in cycles while the load runs (the first cycle always completes): kill -9 a node that
/// is not the meta leader and restart it; kill -9 the leader of REQUESTS, restart it; the same for REFERRALS; then
/// a rolling restart of the three nodes, one at a time. `every` apart; a killed node stays down `down`.
async fn drive_cluster_faults(
    mut platform: Platform,
    cluster: Arc<Mutex<NatsCluster>>,
    stop: Arc<AtomicBool>,
    every: Duration,
    down: Duration,
) -> (Platform, ClusterFaults) {
    let ns = Namespace::new(cluster.lock().await.prefix.clone());
    let names = cluster.lock().await.node_names();
    let mut faults = ClusterFaults::default();
    for cycle in 0usize.. {
        for step in 0..4 {
            if cycle > 0 && stop.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(every).await;
            for name in revive(&mut platform, &mut faults.services) {
                faults.services.crashed.push(name);
            }
            match step {
                0 => {
                    // Not the meta leader; if one leads none of the probed streams either, that one (a follower
                    // of everything: its loss should cost the publishers nothing).
                    let (meta, mut leaders) = {
                        let cluster = cluster.lock().await;
                        let mut leaders = Vec::new();
                        for (stream, _, _) in PROBED {
                            leaders.extend(cluster.stream_leader(&ns.stream(stream)).await);
                        }
                        (cluster.meta_leader().await, leaders)
                    };
                    leaders.extend(meta.clone());
                    let others: Vec<&String> = names.iter().filter(|n| Some(*n) != meta.as_ref()).collect();
                    let followers: Vec<&String> = others.iter().copied().filter(|n| !leaders.contains(n)).collect();
                    let pool = if followers.is_empty() { &others } else { &followers };
                    let node = pool[cycle % pool.len()].clone();
                    faults.nodes.push(node_fault(&cluster, &ns, &node, Down::Follower, down).await);
                }
                1 | 2 => {
                    let stream = PROBED[step - 1].0;
                    let Some(leader) = cluster.lock().await.stream_leader(&ns.stream(stream)).await else {
                        eprintln!("no leader of {stream} found; skipping its leader's kill");
                        continue;
                    };
                    faults.nodes.push(node_fault(&cluster, &ns, &leader, Down::StreamLeader(stream), down).await);
                }
                _ => {
                    for node in &names {
                        faults.nodes.push(node_fault(&cluster, &ns, node, Down::Rolling, down / 2).await);
                        tokio::time::sleep(every / 2).await;
                    }
                }
            }
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    for _ in 0..3 {
        for name in revive(&mut platform, &mut faults.services) {
            faults.services.crashed.push(name);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (platform, faults)
}

/// Cluster mode: the same load, completer and checker as above on a three-node NATS cluster (tests/src/cluster.rs:
/// file storage, `sync_interval: always`, the generated NKEY users) with every stream on three replicas, while
/// the nodes are lost one at a time ([`drive_cluster_faults`]). Prints each fault with how long the stream
/// leaders' elections took as publishers saw them ([`Probe`]: from the kill to the next acknowledged publish).
/// `CHAOS_NATS_DOWN_MS` (default 2000): how long a killed node stays down.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_no_submission_is_lost_or_duplicated_when_nats_nodes_and_stream_leaders_die() {
    let Settings { duration, total, member_count, every, .. } = Settings::from_env();
    let down = Duration::from_millis(env_u64("CHAOS_NATS_DOWN_MS", 2000));
    eprintln!(
        "chaos (NATS cluster): {total} requests over {duration:?}, {member_count} members, a node fault every \
         ~{every:?}, a killed node down {down:?}"
    );
    let cluster = NatsCluster::start().await.expect("the NATS cluster starts");
    let options =
        Options { gateway_env: vec![("ID77_RATE_LIMIT_PER_MINUTE".into(), "0".into())], ..Options::default() };
    let mut platform = cluster.start_platform(options).await.expect("the platform starts on the cluster");
    let api = Api::new(&platform.gateway);
    let (members, offer_id, provider) = join(&api, member_count).await;
    cluster.ensure_consumers(&[&provider]).await.expect("the provider's durable consumer");
    let consumer_args = cluster.referral_consumer_args(&provider);
    let args: Vec<&str> =
        ["--rule", "accept-all"].into_iter().chain(consumer_args.iter().map(String::as_str)).collect();
    platform.start_referral_consumer(&provider, &args).expect("referral consumer");
    let (mut submitted, members_ready) = warm_up(&api, members, &offer_id).await;

    let access = NatsAccess {
        url: cluster.urls(),
        prefix: cluster.prefix.clone(),
        service_nkey: Some(cluster.seed_file("routing")),
        provider_nkey: Some(cluster.seed_file(&format!("provider-{provider}"))),
    };
    let mut probes = Vec::new();
    for (stream, subject, user) in PROBED {
        probes.push(Probe::start(&cluster, stream, subject, user).await);
    }
    let cluster = Arc::new(Mutex::new(cluster));
    let stop_faults = Arc::new(AtomicBool::new(false));
    let stop_completing = Arc::new(AtomicBool::new(false));
    let routing_db = platform.database_url("routing").expect("routing db").to_owned();
    let completer = tokio::spawn(complete_half(
        access.clone(),
        provider.clone(),
        routing_db,
        platform.gateway.clone(),
        members_ready.clone(),
        stop_completing.clone(),
    ));
    let gateway = platform.gateway.clone();
    let driver = tokio::spawn(drive_cluster_faults(platform, cluster.clone(), stop_faults.clone(), every, down));

    let (load, load_time) = submit_load(&gateway, &members_ready, &offer_id, total, duration).await;
    submitted.extend(load);
    stop_faults.store(true, Ordering::SeqCst);
    let (mut platform, faults) = driver.await.expect("fault driver");
    platform.wait_ready(Duration::from_secs(60)).await.expect("platform ready after the faults");
    let (result, settled) = settle(&platform, &submitted, completer, &stop_completing, &access).await;
    for probe in &probes {
        probe.stop().await;
    }

    // The faults, each with the elections the probes saw.
    let mut lines = Vec::new();
    let started = faults.nodes.first().map(|f| f.at);
    for fault in &faults.nodes {
        let since = started.map(|s| fault.at - s).unwrap_or_default();
        let healed = fault.healed.map_or("not within 60s".to_owned(), |h| format!("{:.2}s", h.as_secs_f64()));
        let elections: Vec<String> = probes
            .iter()
            .map(|p| {
                let took =
                    p.recovery_after(fault.at).map_or("never".to_owned(), |d| format!("{:.2}s", d.as_secs_f64()));
                let (before, after) = (fault.leader_before(p.stream), fault.leader_after(p.stream));
                format!("{} {took} (leader {} -> {})", p.stream, before.unwrap_or("?"), after.unwrap_or("?"))
            })
            .collect();
        lines.push(format!(
            "+{:>5.1}s {}: down {:.1}s, cluster healthy {healed} after the restart; next acknowledged publish: {}",
            since.as_secs_f64(),
            fault.describe(),
            fault.down.as_secs_f64(),
            elections.join(", ")
        ));
    }
    for probe in &probes {
        let (sent, acked) = probe.counts();
        lines.push(format!(
            "probe {}: {sent} published every {:?}, {acked} acknowledged (the others lost in an election, not retried)",
            probe.stream,
            Probe::EVERY
        ));
    }
    for (stream, _, _) in PROBED {
        let times: Vec<Duration> = faults
            .nodes
            .iter()
            .filter(|f| matches!(f.kind, Down::StreamLeader(s) if s == stream))
            .filter_map(|f| probes.iter().find(|p| p.stream == stream)?.recovery_after(f.at))
            .collect();
        if let Some(worst) = times.iter().max() {
            lines.push(format!(
                "election of {stream} after its leader's kill, as publishers saw it: {:?} (worst {:.2}s)",
                times.iter().map(|t| format!("{:.2}s", t.as_secs_f64())).collect::<Vec<_>>(),
                worst.as_secs_f64()
            ));
        }
    }
    lines.push(format!(
        "node faults {} ({} kill -9, {} SIGTERM); services found dead and restarted {:?}",
        faults.nodes.len(),
        faults.nodes.iter().filter(|f| f.kind != Down::Rolling).count(),
        faults.nodes.iter().filter(|f| f.kind == Down::Rolling).count(),
        faults.services.crashed
    ));
    let title = format!("chaos report (NATS cluster, nats-server {})", cluster.lock().await.binary.version_string());
    report(&title, &submitted, load_time, &lines, &result, settled, &platform);

    assert_clean(&submitted, &result);
    let count = |kind: Down| faults.nodes.iter().filter(|f| f.kind == kind).count();
    assert!(count(Down::Follower) >= 1, "a node that is not the meta leader must have been killed: {faults:?}");
    for (stream, _, _) in PROBED {
        assert!(count(Down::StreamLeader(stream)) >= 1, "the leader of {stream} must have been killed: {faults:?}");
    }
    assert!(count(Down::Rolling) >= 3, "a rolling restart of the three nodes: {faults:?}");
    for fault in &faults.nodes {
        assert!(fault.healed.is_some(), "the cluster did not heal after {}: {fault:?}", fault.describe());
        if let Down::StreamLeader(stream) = fault.kind {
            assert_eq!(fault.leader_before(stream), Some(fault.node.as_str()), "{} hit the leader", fault.describe());
        }
        for probe in &probes {
            assert!(
                probe.recovery_after(fault.at).is_some(),
                "{} took no message after {}",
                probe.stream,
                fault.describe()
            );
        }
    }
    platform.stop().await;
    drop(cluster);
}
