//! A member's "eligible for my collectivité" search reuses the member's profile for a short while (issue 23), yet
//! a member event this replica applies takes effect on the very next search, without waiting for the cache to
//! expire: a member that goes back to pending is refused (MEMBER_NOT_ACTIVE) at once, and welcome again at once
//! when approved anew.

// `common::events` serves the tests that read what the catalogue publishes; this one only publishes.
#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use id77_catalogue::grpc::SEARCH_CACHE_TTL;
use id77_platform::auth::Role;
use id77_platform::streams;
use id77_platform::testing::TestKeys;
use id77_proto::catalogue::v1 as pb;
use id77_proto::catalogue::v1::catalogue_service_client::CatalogueServiceClient;
use id77_proto::membership::v1 as membership;
use id77_proto::prost_types::Timestamp;
use tonic::transport::Channel;
use uuid::Uuid;

/// A membership event about the member, occurring `seconds` after the first one.
fn at(base: i64, seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds: base + seconds, nanos: 0 })
}

fn approved(member: Uuid, occurred_at: Option<Timestamp>) -> membership::MemberApproved {
    membership::MemberApproved {
        member_id: member.to_string(),
        siren: "217700012".into(),
        name: "Achères-la-Forêt".into(),
        kind: membership::CollectivityKind::Commune.into(),
        population: 1191,
        occurred_at,
        epci_siren: "200072346".into(),
        arrondissement: "774".into(),
        ..Default::default()
    }
}

/// The member's eligible search: `Ok(total)`, or the refusal's code.
async fn eligible(
    client: &mut CatalogueServiceClient<Channel>,
    token: &str,
) -> anyhow::Result<Result<u32, tonic::Code>> {
    let mut request =
        tonic::Request::new(pb::SearchOffersRequest { eligible_only: true, page_size: 5, ..Default::default() });
    request.metadata_mut().insert("authorization", TestKeys::bearer(token));
    match client.search_offers(request).await {
        Ok(answer) => Ok(Ok(answer.into_inner().total)),
        Err(s) if s.code() == tonic::Code::FailedPrecondition => Ok(Err(s.code())),
        Err(s) => bail!("unexpected answer: {s:?}"),
    }
}

/// Waits until the catalogue's consumer has committed the member's `status` (read straight from its database).
async fn committed(db: &sqlx::PgPool, member: Uuid, status: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stored: Option<String> = sqlx::query_scalar("SELECT status FROM member WHERE member_id = $1")
            .bind(member)
            .fetch_optional(db)
            .await?;
        if stored.as_deref() == Some(status) {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "member {member} never became {status} (still {stored:?})");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_member_event_applies_to_the_next_eligible_search_without_waiting_for_the_cache() -> anyhow::Result<()> {
    let env = common::Running::start("catalogue-member-cache", 5, |config| config).await?;
    let mut client = CatalogueServiceClient::new(env.channel.clone());
    let result = scenario(&env, &mut client).await;
    env.stop().await;
    result
}

async fn scenario(env: &common::Running, client: &mut CatalogueServiceClient<Channel>) -> anyhow::Result<()> {
    let db = sqlx::PgPool::connect(&env.database_url).await?;
    let member = Uuid::now_v7();
    let token = env.keys.token(Role::MemberAdmin, Some(member), None);
    let base = id77_platform::time::now().timestamp();
    let publish = |subject: &'static str, id: String, event: membership::MemberApproved| async move {
        common::publish(&env.js, &env.ns, streams::MEMBERSHIP, subject, &id, &event).await;
    };

    // Unknown, then approved: the refusal kept for the unknown member is dropped by the approval.
    ensure!(eligible(client, &token).await? == Err(tonic::Code::FailedPrecondition), "an unknown member");
    publish("id77.membership.member.approved", format!("approved-1-{member}"), approved(member, at(base, 0))).await;
    committed(&db, member, "active").await?;
    let total = eligible(client, &token).await?.ok().context("refused right after its approval was applied")?;
    ensure!(total > 0, "an active commune is eligible to some offers");

    // The profile is reused: PostgreSQL changed behind the consumer's back is not seen until the cache expires.
    // (Nothing is kept within the cache's time after an event, which may not be committed yet: wait for it.)
    tokio::time::sleep(SEARCH_CACHE_TTL).await;
    let read = Instant::now();
    ensure!(eligible(client, &token).await?.is_ok());
    sqlx::query("UPDATE member SET status = 'pending' WHERE member_id = $1").bind(member).execute(&db).await?;
    let cached = eligible(client, &token).await?;
    ensure!(cached.is_ok() || read.elapsed() >= SEARCH_CACHE_TTL, "the profile read just before was not reused");
    tokio::time::sleep(SEARCH_CACHE_TTL).await;
    ensure!(eligible(client, &token).await? == Err(tonic::Code::FailedPrecondition), "kept beyond its time");
    sqlx::query("UPDATE member SET status = 'active' WHERE member_id = $1").bind(member).execute(&db).await?;
    tokio::time::sleep(SEARCH_CACHE_TTL).await;

    // Back to pending through membership's event (a new application after the approval): refused on the very
    // next search, although the active profile was read and kept an instant before.
    let read = Instant::now();
    ensure!(eligible(client, &token).await?.is_ok(), "active again");
    let applied = membership::MemberApplied {
        member_id: member.to_string(),
        siren: "217700012".into(),
        name: "Achères-la-Forêt".into(),
        kind: membership::CollectivityKind::Commune.into(),
        population: 1191,
        occurred_at: at(base, 10),
    };
    common::publish(&env.js, &env.ns, streams::MEMBERSHIP, "id77.membership.member.applied", "applied-1", &applied)
        .await;
    committed(&db, member, "pending").await?;
    let refused = eligible(client, &token).await?;
    let waited = read.elapsed();
    ensure!(refused == Err(tonic::Code::FailedPrecondition), "served from the cache after member.applied");
    if waited >= SEARCH_CACHE_TTL {
        eprintln!("note: the event took {waited:?}, longer than the cache's {SEARCH_CACHE_TTL:?}");
    }

    // Approved anew: welcome at once.
    ensure!(eligible(client, &token).await? == Err(tonic::Code::FailedPrecondition));
    publish("id77.membership.member.approved", format!("approved-2-{member}"), approved(member, at(base, 20))).await;
    committed(&db, member, "active").await?;
    ensure!(eligible(client, &token).await?.is_ok(), "refused from the cache after a new approval");
    db.close().await;
    Ok(())
}
