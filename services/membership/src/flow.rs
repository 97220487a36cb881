//! The life of a membership, each use case on its own transaction: a collectivité applies, the coordinator
//! approves it and assigns (or clears) its referent, and a removed referent leaves the members it followed.
//! Every path writes its `member.*` events to the outbox in the same transaction as the state they announce.

use chrono::{DateTime, Utc};
use id77_platform::auth::{Caller, Role};
use id77_platform::{ServiceError, outbox, time};
use id77_proto::membership::v1 as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Application, MemberStatus};
use crate::error::MembershipError;
use crate::identity::domain::audit;
use crate::identity::store::{self as identity_store, Audit};
use crate::mail;
use crate::mapping::kind_to_proto;
use crate::store::{self, MemberRow, Territory};

/// A collectivité of the directory applies (again, after withdrawing): its membership is pending, and
/// `member.applied` says so.
pub async fn apply(pool: &PgPool, application: Application) -> Result<MemberRow, ServiceError> {
    let mut tx = pool.begin().await?;
    let siren = application.siren.as_str();
    let collectivity = store::get_collectivity(&mut tx, siren)
        .await?
        .ok_or_else(|| MembershipError::NotInDirectory { siren: siren.to_owned() })?;
    if let Some(existing) = store::member_by_siren_for_update(&mut tx, siren).await? {
        let status = MemberStatus::parse(&existing.status).unwrap_or(MemberStatus::Active);
        if !status.may_reapply() {
            let id = existing.id.to_string();
            return Err(MembershipError::AlreadyMember { name: existing.name, status: existing.status, id }.into());
        }
    }
    let now = time::now();
    let row = MemberRow {
        id: Uuid::now_v7(),
        siren: collectivity.siren,
        name: collectivity.name,
        kind: collectivity.kind,
        population: collectivity.population,
        status: MemberStatus::Pending.as_str().to_owned(),
        contact_name: application.contact_name,
        contact_email: application.contact_email,
        applied_at: now,
        approved_at: None,
        referent_user_id: None,
        refusal_reason: None,
        refused_at: None,
    };
    let member = match store::upsert_application(&mut tx, &row).await {
        Ok(member) => member,
        Err(e) if identity_store::is_unique_violation(&e) => return Err(MembershipError::MembershipExists.into()),
        Err(e) => return Err(e.into()),
    };
    let event = pb::MemberApplied {
        member_id: member.id.to_string(),
        siren: member.siren.clone(),
        name: member.name.clone(),
        kind: kind_to_proto(&member.kind).into(),
        population: member.population,
        occurred_at: Some(time::to_proto(now)),
    };
    outbox::enqueue(&mut tx, &event).await?;
    tx.commit().await?;
    tracing::info!(member_id = %member.id, siren = %member.siren, "membership applied");
    Ok(member)
}

/// The coordinator approves a pending membership: `member.approved` carries the member's territory (routing
/// rules read it), and the audit log keeps who approved it.
pub async fn approve(pool: &PgPool, caller: &Caller, id: Uuid) -> Result<MemberRow, ServiceError> {
    let mut tx = pool.begin().await?;
    let member = store::member_for_update(&mut tx, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("member", &id.to_string()))?;
    let status = MemberStatus::parse(&member.status)
        .ok_or_else(|| ServiceError::internal("reading a member", format!("unknown status {}", member.status)))?;
    let next = status.approve()?;
    let now = time::now();
    let member = store::set_status(&mut tx, id, next.as_str(), Some(now), now).await?;
    let territory = store::territory(&mut tx, id).await?;
    let event = pb::MemberApproved {
        member_id: member.id.to_string(),
        siren: member.siren.clone(),
        name: member.name.clone(),
        kind: kind_to_proto(&member.kind).into(),
        population: member.population,
        occurred_at: Some(time::to_proto(now)),
        insee_code: territory.insee_code,
        epci_siren: territory.epci_siren,
        arrondissement: territory.arrondissement,
    };
    outbox::enqueue(&mut tx, &event).await?;
    let subject = member.id.to_string();
    let detail = format!("{} ({})", member.name, member.siren);
    let record = Audit {
        kind: audit::MEMBERSHIP_APPROVED,
        actor_user_id: Some(caller.user_id),
        subject: &subject,
        detail: &detail,
        ..Default::default()
    };
    identity_store::audit(&mut tx, &record).await?;
    tx.commit().await?;
    tracing::info!(member_id = %member.id, "membership approved");
    Ok(member)
}

/// The coordinator refuses a pending application with a reason: `member.refused`, the audit log, and a mail to
/// the application's contact (when it has one), all in one transaction.
pub async fn refuse(pool: &PgPool, caller: &Caller, id: Uuid, reason: &str) -> Result<MemberRow, ServiceError> {
    let mut tx = pool.begin().await?;
    identity_store::live_user(&mut tx, caller).await?;
    let member = store::member_for_update(&mut tx, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("member", &id.to_string()))?;
    let status = MemberStatus::parse(&member.status)
        .ok_or_else(|| ServiceError::internal("reading a member", format!("unknown status {}", member.status)))?;
    let next = status.refuse()?;
    let now = time::now();
    let member = store::refuse(&mut tx, id, next.as_str(), reason, now).await?;
    let event = pb::MemberRefused {
        member_id: member.id.to_string(),
        siren: member.siren.clone(),
        name: member.name.clone(),
        reason: reason.to_owned(),
        occurred_at: Some(time::to_proto(now)),
    };
    outbox::enqueue(&mut tx, &event).await?;
    if !member.contact_email.trim().is_empty() {
        let body = refusal_mail(&member.contact_name, &member.name, reason);
        let subject = format!("Votre demande d'adhésion à ID 77 ({})", member.name);
        let mail = mail::Mail {
            email: member.contact_email.trim(),
            kind: mail::kind::MEMBERSHIP_REFUSED,
            subject: &subject,
            body: &body,
            link_path: "",
            at: now,
        };
        mail::queue(&mut tx, &mail).await?;
    }
    let subject = member.id.to_string();
    let detail = format!("{} ({}): {reason}", member.name, member.siren);
    let record = Audit {
        kind: audit::MEMBERSHIP_REFUSED,
        actor_user_id: Some(caller.user_id),
        subject: &subject,
        detail: &detail,
        ..Default::default()
    };
    identity_store::audit(&mut tx, &record).await?;
    tx.commit().await?;
    tracing::info!(member_id = %member.id, "membership refused");
    Ok(member)
}

/// The text of the refusal mail.
fn refusal_mail(contact_name: &str, member_name: &str, reason: &str) -> String {
    let greeting = if contact_name.trim().is_empty() {
        "Bonjour,".to_owned()
    } else {
        format!("Bonjour {},", contact_name.trim())
    };
    format!(
        "{greeting}\n\nLa demande d'adhésion de {member_name} à ID 77 n'a pas été acceptée par la coordination \
         départementale, pour la raison suivante :\n\n{reason}\n\nVous pouvez déposer une nouvelle demande sur le \
         portail ID 77 si votre situation change.\n"
    )
}

/// The coordinator gives a member its referent (an active referent account), or none: `member.updated` tells
/// the other services. Assigning the current referent again changes nothing and announces nothing.
pub async fn assign_referent(
    pool: &PgPool,
    caller: &Caller,
    member_id: Uuid,
    referent: Option<Uuid>,
) -> Result<MemberRow, ServiceError> {
    let now = time::now();
    let mut tx = pool.begin().await?;
    identity_store::live_user(&mut tx, caller).await?;
    let member = store::member_for_update(&mut tx, member_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("member", &member_id.to_string()))?;
    if let Some(referent) = referent {
        let user = identity_store::user_by_id(&mut tx, referent)
            .await?
            .filter(|u| u.removed_at.is_none())
            .ok_or_else(|| ServiceError::not_found("user", &referent.to_string()))?;
        if user.role != Role::Referent.as_str() || !user.active {
            return Err(ServiceError::invalid("referent_user_id", "must be an active referent"));
        }
    }
    if member.referent_user_id == referent {
        return Ok(member);
    }
    let member = store::set_referent(&mut tx, member_id, referent, now).await?;
    let referent_user_id = referent.map(|r| r.to_string()).unwrap_or_default();
    let territory = store::territory(&mut tx, member.id).await?;
    outbox::enqueue(&mut tx, &member_updated(member.id, referent_user_id.clone(), territory, now)).await?;
    let subject = member.id.to_string();
    let detail =
        if referent_user_id.is_empty() { "no referent".to_owned() } else { format!("referent {referent_user_id}") };
    let record = Audit {
        kind: audit::REFERENT_ASSIGNED,
        actor_user_id: Some(caller.user_id),
        subject: &subject,
        detail: &detail,
        ..Default::default()
    };
    identity_store::audit(&mut tx, &record).await?;
    tx.commit().await?;
    tracing::info!(member_id = %member.id, referent = %referent_user_id, "referent assigned");
    Ok(member)
}

/// A referent account is removed (in the caller's transaction): the members it followed have no referent any
/// more, and the other services learn it like an assignment.
pub async fn forget_referent(
    conn: &mut PgConnection,
    referent_user_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), ServiceError> {
    for member_id in store::clear_referent(conn, referent_user_id, at).await? {
        let territory = store::territory(conn, member_id).await?;
        outbox::enqueue(conn, &member_updated(member_id, String::new(), territory, at)).await?;
    }
    Ok(())
}

/// `member.updated` with the member's current facts (routing keeps its territory from these).
fn member_updated(
    member_id: Uuid,
    referent_user_id: String,
    territory: Territory,
    at: DateTime<Utc>,
) -> pb::MemberUpdated {
    pb::MemberUpdated {
        member_id: member_id.to_string(),
        referent_user_id,
        occurred_at: Some(time::to_proto(at)),
        kind: kind_to_proto(&territory.kind).into(),
        siren: territory.siren,
        population: territory.population,
        insee_code: territory.insee_code,
        epci_siren: territory.epci_siren,
        arrondissement: territory.arrondissement,
    }
}
