//! The notices that are not about a request's status (issue 21): to a provider's agents when a referral is offered
//! to their provider and when its deadline approaches (routing's `referral.reminded`), to the coordinators on a new
//! membership application and on an escalation (`referral.escalated`). Each follows its recipient's
//! `status_changed` preference and is also a notification in the portal ([`super::inbox`]). Keyed by the event's
//! message id and the recipient: a redelivery queues nothing more.

use anyhow::anyhow;
use chrono::{DateTime, Timelike, Utc};
use id77_platform::{Event, HandleError, time};
use id77_proto::membership::v1::MemberApplied;
use id77_proto::routing::v1::{ReferralEscalated, ReferralOffered, ReferralReminded};
use sqlx::PgConnection;
use uuid::Uuid;

use super::domain::{Candidate, long_date};
use super::inbox;
use super::mailbag::{Mail, Mailbag};

/// A referral offered to the recipient's provider (to its agents).
pub const KIND_REFERRAL_OFFERED: &str = "referral_offered";
/// A referral whose answer is due soon (to the provider's agents).
pub const KIND_REFERRAL_REMINDER: &str = "referral_reminder";
/// A referral left unanswered past its deadline (to the coordinators).
pub const KIND_REFERRAL_ESCALATED: &str = "referral_escalated";
/// A collectivity applied for membership (to the coordinators).
pub const KIND_MEMBER_APPLIED: &str = "member_applied";

/// Where each notice leads in the portal.
pub fn referral_path(referral_id: &str) -> String {
    format!("/orientations/{referral_id}")
}
pub const ESCALATIONS_PATH: &str = "/coordination/orientations";
pub const APPLICATIONS_PATH: &str = "/coordination/adhesions";

/// The key of a notice: one per (event, kind), so that two notices of one event stay apart.
pub fn notice_id(kind: &str, message_id: &str) -> Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("id77:{kind}:{message_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The agents of `provider` who want status mails.
pub fn agents_of<'c>(provider: &str, candidates: &'c [Candidate]) -> Vec<&'c Candidate> {
    candidates
        .iter()
        .filter(|c| c.status_changed && c.role == "provider_agent" && c.provider_code.as_deref() == Some(provider))
        .collect()
}

/// The coordinators who want status mails.
pub fn coordinators(candidates: &[Candidate]) -> Vec<&Candidate> {
    candidates.iter().filter(|c| c.status_changed && c.role == "coordinator").collect()
}

/// One line, at most 150 characters.
fn one_line(text: &str) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 150 { format!("{}…", line.chars().take(149).collect::<String>()) } else { line }
}

fn greeting(name: &str) -> String {
    let name = one_line(name);
    if name.is_empty() { "Bonjour,".to_owned() } else { format!("Bonjour {name},") }
}

/// `at` as Paris reads it, the French long way: `7 décembre 2026 à 17 h 00`.
pub fn paris(at: DateTime<Utc>) -> String {
    let local = time::paris(at);
    format!("{} à {} h {:02}", long_date(local.date()), local.hour(), local.minute())
}

/// What an agent's referral mail says.
#[derive(Debug, Clone, Copy)]
pub struct ReferralMail<'a> {
    pub subject: &'a str,
    pub offer_title: &'a str,
    pub member_name: &'a str,
    pub respond_by: Option<DateTime<Utc>>,
}

fn referral_facts(m: &ReferralMail<'_>) -> String {
    let mut facts = format!("Demande : « {} »\n", one_line(m.subject));
    if !m.offer_title.trim().is_empty() {
        facts.push_str(&format!("Offre : {}\n", one_line(m.offer_title)));
    }
    if !m.member_name.trim().is_empty() {
        facts.push_str(&format!("Collectivité : {}\n", one_line(m.member_name)));
    }
    if let Some(by) = m.respond_by {
        facts.push_str(&format!("Réponse attendue avant le {} (heure de Paris)\n", paris(by)));
    }
    facts
}

/// Subject and body (without the link) of the mail telling an agent that a request was sent to their provider.
pub fn referral_offered_mail(name: &str, m: &ReferralMail<'_>) -> (String, String) {
    let subject = one_line(&format!("[ID 77] Nouvelle demande à traiter : « {} »", m.subject));
    let body = format!(
        "{}\n\nUne nouvelle demande a été orientée vers votre structure.\n\n{}\nAcceptez-la ou déclinez-la depuis \
         le portail.\n",
        greeting(name),
        referral_facts(m),
    );
    (subject, body)
}

/// Subject and body of the reminder that a referral's answer is due soon.
pub fn referral_reminder_mail(name: &str, m: &ReferralMail<'_>) -> (String, String) {
    let subject = one_line(&format!("[ID 77] Rappel : réponse attendue pour « {} »", m.subject));
    let body = format!(
        "{}\n\nLa demande ci-dessous attend toujours votre réponse ; son délai arrive bientôt à échéance.\n\n{}\n\
         Sans réponse à temps, la coordination en sera informée.\n",
        greeting(name),
        referral_facts(m),
    );
    (subject, body)
}

/// Subject and body of the mail telling a coordinator that a referral went unanswered past its deadline; the
/// provider by its name (None: requests does not know it, « le partenaire »).
pub fn referral_escalated_mail(name: &str, subject: &str, provider: Option<&str>) -> (String, String) {
    let title = one_line(&format!("[ID 77] Demande sans réponse du partenaire : « {subject} »"));
    let who = provider
        .map(one_line)
        .filter(|p| !p.is_empty())
        .map_or("Le partenaire".to_owned(), |p| format!("Le partenaire {p}"));
    let body = format!(
        "{}\n\n{who} n'a pas répondu dans le délai à la demande « {} ».\nVous pouvez la réorienter depuis le \
         suivi des orientations.\n",
        greeting(name),
        one_line(subject),
    );
    (title, body)
}

/// Subject and body of the mail telling a coordinator that a collectivity applied for membership.
pub fn member_applied_mail(name: &str, member_name: &str, siren: &str) -> (String, String) {
    let subject = one_line(&format!("[ID 77] Nouvelle demande d'adhésion : {member_name}"));
    let body = format!(
        "{}\n\nLa collectivité {} (SIREN {}) demande à adhérer à ID 77.\nExaminez sa demande dans la liste des \
         adhésions.\n",
        greeting(name),
        one_line(member_name),
        one_line(siren),
    );
    (subject, body)
}

/// A notice to queue for some recipients.
pub struct Notice<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub request_id: Option<Uuid>,
    pub link_path: &'a str,
    pub at: DateTime<Utc>,
}

/// Queues `notice` in `mails` for each of `recipients`, `write` making the subject and body for a display name;
/// returns how many.
pub fn queue(
    mails: &mut Mailbag,
    notice: &Notice<'_>,
    recipients: &[&Candidate],
    write: impl Fn(&str) -> (String, String),
) -> usize {
    for recipient in recipients {
        let (subject, body) = write(&recipient.display_name);
        mails.push(Mail {
            event_id: notice.id,
            recipient: recipient.user_id,
            email: recipient.email.clone(),
            kind: notice.kind.to_owned(),
            request_id: notice.request_id,
            subject,
            body,
            link_path: notice.link_path.to_owned(),
            at: notice.at,
        });
    }
    recipients.len()
}

/// When the event happened (its `occurred_at`, else now).
fn when(ts: Option<&id77_proto::prost_types::Timestamp>) -> DateTime<Utc> {
    ts.and_then(time::from_proto).unwrap_or_else(time::now)
}

fn request_id(raw: &str) -> Result<Uuid, HandleError> {
    Uuid::parse_str(raw.trim()).map_err(|_| HandleError::Reject(anyhow!("request_id {raw:?} is not a UUID")))
}

/// Queues in `mails` the agents' and coordinators' notices of one of routing's referral events (others: nothing);
/// in the consumer's transaction.
pub async fn on_referral_event(
    conn: &mut PgConnection,
    mails: &mut Mailbag,
    event: &Event,
) -> Result<usize, HandleError> {
    if let Some(e) = event.decode_as::<ReferralOffered>()? {
        let m = ReferralMail {
            subject: &e.subject,
            offer_title: &e.offer_title,
            member_name: "",
            respond_by: e.respond_by.as_ref().and_then(time::from_proto),
        };
        let notice = Notice {
            id: notice_id(KIND_REFERRAL_OFFERED, &event.message_id),
            kind: KIND_REFERRAL_OFFERED,
            request_id: Some(request_id(&e.request_id)?),
            link_path: &referral_path(&e.referral_id),
            at: when(e.occurred_at.as_ref()),
        };
        let candidates = mails.agents(conn, &e.provider_code).await?;
        return Ok(queue(mails, &notice, &agents_of(&e.provider_code, &candidates), |n| referral_offered_mail(n, &m)));
    }
    if let Some(e) = event.decode_as::<ReferralReminded>()? {
        let id = request_id(&e.request_id)?;
        let subject = inbox::request_subject(conn, id).await?;
        let m = ReferralMail {
            subject: &subject,
            offer_title: "",
            member_name: "",
            respond_by: e.respond_by.as_ref().and_then(time::from_proto),
        };
        let notice = Notice {
            id: notice_id(KIND_REFERRAL_REMINDER, &event.message_id),
            kind: KIND_REFERRAL_REMINDER,
            request_id: Some(id),
            link_path: &referral_path(&e.referral_id),
            at: when(e.occurred_at.as_ref()),
        };
        let candidates = mails.agents(conn, &e.provider_code).await?;
        return Ok(queue(mails, &notice, &agents_of(&e.provider_code, &candidates), |n| referral_reminder_mail(n, &m)));
    }
    if let Some(e) = event.decode_as::<ReferralEscalated>()? {
        let id = request_id(&e.request_id)?;
        let subject = inbox::request_subject(conn, id).await?;
        let notice = Notice {
            id: notice_id(KIND_REFERRAL_ESCALATED, &event.message_id),
            kind: KIND_REFERRAL_ESCALATED,
            request_id: Some(id),
            link_path: ESCALATIONS_PATH,
            at: when(e.occurred_at.as_ref()),
        };
        let candidates = inbox::coordinators(conn).await?;
        let names = crate::store::provider_names(conn, &[e.provider_code.as_str()]).await?;
        return Ok(queue(mails, &notice, &coordinators(&candidates), |n| {
            referral_escalated_mail(n, &subject, names.known(&e.provider_code))
        }));
    }
    Ok(0)
}

/// Queues the coordinators' notice of a membership application (other membership events: nothing).
pub async fn on_member_event(conn: &mut PgConnection, event: &Event) -> Result<usize, HandleError> {
    let Some(e) = event.decode_as::<MemberApplied>()? else {
        return Ok(0);
    };
    let notice = Notice {
        id: notice_id(KIND_MEMBER_APPLIED, &event.message_id),
        kind: KIND_MEMBER_APPLIED,
        request_id: None,
        link_path: APPLICATIONS_PATH,
        at: when(e.occurred_at.as_ref()),
    };
    let candidates = inbox::coordinators(conn).await?;
    let mut mails = Mailbag::default();
    let queued = queue(&mut mails, &notice, &coordinators(&candidates), |n| member_applied_mail(n, &e.name, &e.siren));
    mails.write(conn).await?;
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn candidate(role: &str, provider: Option<&str>, on: bool) -> Candidate {
        Candidate {
            user_id: Uuid::now_v7(),
            email: format!("{role}@example.fr"),
            display_name: "Camille".into(),
            role: role.into(),
            member_id: None,
            provider_code: provider.map(str::to_owned),
            status_changed: on,
            message_posted: true,
        }
    }

    #[test]
    fn the_provider_s_agents_who_want_mail_get_the_referral() {
        let mine = candidate("provider_agent", Some("ATD"), true);
        let off = candidate("provider_agent", Some("ATD"), false);
        let other = candidate("provider_agent", Some("SDE"), true);
        let coordinator = candidate("coordinator", None, true);
        let all = vec![mine.clone(), off, other, coordinator.clone()];
        assert_eq!(agents_of("ATD", &all), vec![&mine]);
        assert_eq!(coordinators(&all), vec![&coordinator]);
    }

    #[test]
    fn paris_time_follows_summer_time_the_long_french_way() {
        let winter = Utc.with_ymd_and_hms(2026, 12, 7, 16, 0, 0).single().expect("date");
        let summer = Utc.with_ymd_and_hms(2026, 7, 1, 16, 5, 0).single().expect("date");
        assert_eq!(paris(winter), "7 décembre 2026 à 17 h 00");
        assert_eq!(paris(summer), "1er juillet 2026 à 18 h 05");
        // 2026: summer time from 29 March to 25 October.
        let before = Utc.with_ymd_and_hms(2026, 3, 29, 0, 59, 0).single().expect("date");
        assert_eq!(paris(before), "29 mars 2026 à 1 h 59");
    }

    #[test]
    fn the_referral_mails_say_what_and_by_when_in_french() {
        let by = Utc.with_ymd_and_hms(2026, 12, 7, 16, 0, 0).single();
        let m = ReferralMail {
            subject: "Voirie\nrue",
            offer_title: "Conseil voirie",
            member_name: "Melun",
            respond_by: by,
        };
        let (subject, body) = referral_offered_mail("Camille", &m);
        assert_eq!(subject, "[ID 77] Nouvelle demande à traiter : « Voirie rue »");
        assert!(body.starts_with("Bonjour Camille,"));
        assert!(body.contains("Offre : Conseil voirie"));
        assert!(body.contains("Collectivité : Melun"));
        assert!(body.contains("Réponse attendue avant le 7 décembre 2026 à 17 h 00 (heure de Paris)"), "{body}");
        let (subject, body) = referral_reminder_mail("", &m);
        assert!(subject.starts_with("[ID 77] Rappel"));
        assert!(body.starts_with("Bonjour,"));
        assert!(body.contains("délai arrive bientôt"));
    }

    #[test]
    fn the_coordinator_mails_name_the_provider_and_the_collectivity() {
        let (subject, body) = referral_escalated_mail("Claude", "Voirie", Some("Direction des routes"));
        assert!(subject.contains("« Voirie »"));
        assert!(body.contains("\n\nLe partenaire Direction des routes n'a pas répondu dans le délai"), "{body}");
        let (_, body) = referral_escalated_mail("Claude", "Voirie", None);
        assert!(body.contains("\n\nLe partenaire n'a pas répondu dans le délai"), "{body}");
        let (subject, body) = member_applied_mail("Claude", "Commune de Melun", "217702885");
        assert_eq!(subject, "[ID 77] Nouvelle demande d'adhésion : Commune de Melun");
        assert!(body.contains("(SIREN 217702885)"));
    }

    #[test]
    fn a_notice_key_is_stable_and_distinct_per_kind() {
        assert_eq!(notice_id(KIND_REFERRAL_OFFERED, "m1"), notice_id(KIND_REFERRAL_OFFERED, "m1"));
        assert_ne!(notice_id(KIND_REFERRAL_OFFERED, "m1"), notice_id(KIND_REFERRAL_REMINDER, "m1"));
    }
}
