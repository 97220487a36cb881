//! SQL of the coordinator's routing rules: versioned rule sets, one edit at a time (re-exported by
//! [`crate::store`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, Row};
use uuid::Uuid;

use crate::domain::rules::Rule;

/// Serialises rule set edits (one writer at a time per database).
const RULES_LOCK: i64 = 0x1d77_0a7b_0101;

#[derive(Debug, Clone, Default)]
pub struct RuleSetRow {
    pub version: i32,
    pub rules: Vec<Rule>,
    pub created_at: Option<DateTime<Utc>>,
    pub created_by: Option<Uuid>,
}

type RuleSetTuple = (i32, Json<Vec<Rule>>, DateTime<Utc>, Option<Uuid>);

fn rule_set(row: Option<RuleSetTuple>) -> RuleSetRow {
    row.map(|(version, Json(rules), created_at, created_by)| RuleSetRow {
        version,
        rules,
        created_at: Some(created_at),
        created_by,
    })
    .unwrap_or_default()
}

/// What a routing decides with: the current rule set and the providers' deadlines. Read with a submitted
/// request's offer and member ([`crate::store_submissions::submission_context`]; issue 23: statements per journey), on the
/// consumer's transaction, so that an edit made just before applies (nothing kept in memory).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub rules: RuleSetRow,
    /// Each provider's deadline in business days, by code (a provider routing does not know is missing).
    pub sla_days: HashMap<String, i32>,
}

/// Read from the columns `rules_version`, `rules`, `rules_created_at`, `rules_created_by` (null: no rule set
/// yet) and `sla_days` (a JSON object).
impl FromRow<'_, PgRow> for Policy {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let current = match row.try_get::<Option<i32>, _>("rules_version")? {
            Some(version) => Some((
                version,
                row.try_get("rules")?,
                row.try_get("rules_created_at")?,
                row.try_get("rules_created_by")?,
            )),
            None => None,
        };
        let Json(sla_days) = row.try_get("sla_days")?;
        Ok(Self { rules: rule_set(current), sla_days })
    }
}

/// The current rule set (version 0, empty, before the first edit).
pub async fn current_rules(conn: &mut PgConnection) -> Result<RuleSetRow, sqlx::Error> {
    let row =
        sqlx::query_as("SELECT version, rules, created_at, created_by FROM rule_set ORDER BY version DESC LIMIT 1")
            .fetch_optional(conn)
            .await?;
    Ok(rule_set(row))
}

/// One version of the rule set (empty for version 0 or an unknown version).
pub async fn rules_at(conn: &mut PgConnection, version: i32) -> Result<RuleSetRow, sqlx::Error> {
    let row = sqlx::query_as("SELECT version, rules, created_at, created_by FROM rule_set WHERE version = $1")
        .bind(version)
        .fetch_optional(conn)
        .await?;
    Ok(rule_set(row))
}

/// Takes the edit lock for the rest of the transaction.
pub async fn lock_rules(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(RULES_LOCK).execute(conn).await?;
    Ok(())
}

pub async fn insert_rule_set(
    conn: &mut PgConnection,
    version: i32,
    rules: &[Rule],
    by: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO rule_set (version, rules, created_by, created_at) VALUES ($1, $2, $3, $4)")
        .bind(version)
        .bind(Json(rules))
        .bind(by)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}
