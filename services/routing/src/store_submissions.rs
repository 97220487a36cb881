//! SQL of what routing reads to route a submitted request: its offer, its member and the policy.

use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::store::{MemberRow, OfferRow, Policy};

/// What routing a submitted request needs: its offer and member (`None`: unknown to routing yet) and the
/// policy to route it with.
#[derive(Debug, Clone)]
pub struct SubmissionContext {
    pub offer: Option<OfferRow>,
    pub member: Option<MemberRow>,
    pub policy: Policy,
}

/// The [`SubmissionContext`] of a request for `offer_id` by `member_id`, in one read where three were (issue 23).
pub async fn submission_context(
    conn: &mut PgConnection,
    offer_id: Uuid,
    member_id: Uuid,
) -> Result<SubmissionContext, sqlx::Error> {
    submission_contexts(conn, &[(offer_id, member_id)]).await?.pop().ok_or(sqlx::Error::RowNotFound)
}

/// The [`SubmissionContext`]s of a consumer's batch of submissions (`(offer_id, member_id)` each, in order), in one
/// read: the policy is read once and shared.
pub async fn submission_contexts(
    conn: &mut PgConnection,
    requests: &[(Uuid, Uuid)],
) -> Result<Vec<SubmissionContext>, sqlx::Error> {
    use sqlx::Row;
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let offers: Vec<Uuid> = requests.iter().map(|(offer, _)| *offer).collect();
    let members: Vec<Uuid> = requests.iter().map(|(_, member)| *member).collect();
    // The rule set and the deadlines on the first row only (the same for every request of the batch).
    let rows = sqlx::query(
        "SELECT o.offer_id, o.code, o.title, o.provider_code, o.version, o.themes, o.price_kind,
                m.member_id, m.siren, m.kind, m.population, m.insee_code, m.epci_siren, m.arrondissement,
                m.referent_user_id,
                r.version AS rules_version, r.rules, r.created_at AS rules_created_at,
                r.created_by AS rules_created_by,
                CASE WHEN s.n = 1 THEN
                  (SELECT COALESCE(jsonb_object_agg(p.code, p.sla_business_days), '{}') FROM provider p)
                END AS sla_days
         FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS s(offer_id, member_id, n)
         LEFT JOIN offer o ON o.offer_id = s.offer_id LEFT JOIN member m ON m.member_id = s.member_id
         LEFT JOIN (SELECT version, rules, created_at, created_by FROM rule_set ORDER BY version DESC LIMIT 1) r
           ON s.n = 1
         ORDER BY s.n",
    )
    .bind(&offers)
    .bind(&members)
    .fetch_all(conn)
    .await?;
    let policy = match rows.first() {
        Some(first) => Policy::from_row(first)?,
        None => return Ok(Vec::new()),
    };
    rows.iter()
        .map(|row| {
            let offer = match row.try_get::<Option<Uuid>, _>("offer_id")? {
                Some(_) => Some(OfferRow::from_row(row)?),
                None => None,
            };
            let member = match row.try_get::<Option<Uuid>, _>("member_id")? {
                Some(_) => Some(MemberRow::from_row(row)?),
                None => None,
            };
            Ok(SubmissionContext { offer, member, policy: policy.clone() })
        })
        .collect()
}
