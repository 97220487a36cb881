//! Why a request went where it went (ExplainRouting): its offer's and member's facts and its referrals, read in
//! one connection, explained by [`crate::domain::explanation`] with the rule set its latest referral was routed
//! with (else the current one).

use sqlx::PgPool;
use uuid::Uuid;

use super::lifecycle::{member_facts, offer_facts};
use crate::domain::ReferralStatus;
use crate::domain::explanation::{self, Attempt, Explained};
use crate::error::{FlowError, RoutingError};
use crate::store::{self, ReferralRow, RoutedRequestRow};

/// The explanation of a request's routing, and what is shown beside it.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub request: RoutedRequestRow,
    /// The referent following the request's member (the one referent who may read the explanation).
    pub referent: Option<Uuid>,
    /// The rule set version the explanation reproduces (0: none yet).
    pub rule_version: i32,
    pub explained: Explained,
    /// Every referral of the request, first attempt first.
    pub referrals: Vec<ReferralRow>,
}

/// Explains the routing of request `request_id` (not found when routing never received it).
pub async fn explain(pool: &PgPool, request_id: Uuid) -> Result<Explanation, FlowError> {
    let mut conn = pool.acquire().await?;
    let request = store::get_routed_request(&mut conn, request_id)
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("request {request_id}")))?;
    let member = store::get_member(&mut conn, request.member_id).await?;
    let referrals = store::referrals_of(&mut conn, request_id).await?;
    let offer = store::get_offer(&mut conn, request.offer_id).await?;
    // The rule set the latest referral was routed with (else the current one): the explanation reproduces that
    // decision.
    let rule_set = match referrals.last().and_then(|r| r.rule_version) {
        Some(v) => store::rules_at(&mut conn, v).await?,
        None => store::current_rules(&mut conn).await?,
    };
    let attempts: Vec<Attempt<'_>> = referrals
        .iter()
        .map(|r| Attempt {
            provider_code: &r.provider_code,
            status: ReferralStatus::parse(&r.status),
            assignment: &r.assignment,
        })
        .collect();
    let offer_facts = offer.as_ref().map(offer_facts).unwrap_or_default();
    let explained = explanation::explain(&rule_set.rules, &offer_facts, &member_facts(member.as_ref()), &attempts);
    Ok(Explanation {
        request,
        referent: member.and_then(|m| m.referent_user_id),
        rule_version: rule_set.version,
        explained,
        referrals,
    })
}
