//! The coordinator's edits of the routing rules: each makes a new version of the rule set (the referrals keep the
//! version they were routed with, so that their routing can be explained), one writer at a time.

use sqlx::PgPool;
use uuid::Uuid;

use super::lifecycle::Lifecycle;
use crate::domain::rules::{self, Rule};
use crate::error::{FlowError, RoutingError};
use crate::store::{self, RuleSetRow};

/// What to do to the rule set.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Insert at a 1-based position (0 or past the end: appended).
    Create(Rule, usize),
    Update(Rule),
    Delete(Uuid),
    /// Every rule, in its new order.
    Reorder(Vec<Uuid>),
}

/// The rules after `edit`, not validated yet.
fn edited(rules: &[Rule], edit: Edit) -> Result<Vec<Rule>, RoutingError> {
    match edit {
        Edit::Create(rule, position) => Ok(rules::edit::insert(rules, rule, position)),
        Edit::Update(rule) => {
            let id = rule.id;
            rules::edit::replace(rules, rule).ok_or_else(|| RoutingError::NotFound(format!("rule {id}")))
        }
        Edit::Delete(id) => rules::edit::remove(rules, id).ok_or_else(|| RoutingError::NotFound(format!("rule {id}"))),
        Edit::Reorder(ids) => rules::edit::reorder(rules, &ids).map_err(|e| RoutingError::invalid("rule_ids", &e)),
    }
}

impl Lifecycle {
    /// Applies `edit` to the current rule set if it is still at version `expected` (0: whichever it is),
    /// validates the result (known providers, no unreachable rule) and saves it as the next version, made `by`.
    pub async fn edit_rules(
        &self,
        pool: &PgPool,
        edit: Edit,
        expected: i32,
        by: Uuid,
    ) -> Result<RuleSetRow, FlowError> {
        let mut tx = pool.begin().await?;
        store::lock_rules(&mut tx).await?;
        let current = store::current_rules(&mut tx).await?;
        if expected != 0 && expected != current.version {
            return Err(RoutingError::RulesChanged { current: current.version, expected }.into());
        }
        let rules = edited(&current.rules, edit)?;
        let known = store::provider_codes(&mut tx).await?;
        rules::validate(&rules, |p| known.iter().any(|k| k == p)).map_err(RoutingError::from)?;
        let version = current.version + 1;
        let now = self.now();
        store::insert_rule_set(&mut tx, version, &rules, by, now).await?;
        tx.commit().await?;
        tracing::info!(version, rules = rules.len(), %by, "routing rules changed");
        Ok(RuleSetRow { version, rules, created_at: Some(now), created_by: Some(by) })
    }
}
