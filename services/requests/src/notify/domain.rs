//! Pure rules of the notifications: who gets a mail about what, and what it says (French, plain text).

use uuid::Uuid;

pub const KIND_STATUS_CHANGED: &str = "status_changed";
pub const KIND_MESSAGE_POSTED: &str = "message_posted";
/// A quote proposed to the member (to the member's users). Like every kind below, it follows the recipient's
/// `status_changed` preference: a quote's fate is the request's.
pub const KIND_QUOTE_PROPOSED: &str = "quote_proposed";
/// A quote the member accepted (to the provider's agents: they may start).
pub const KIND_QUOTE_ACCEPTED: &str = "quote_accepted";
/// A request cancelled while a provider held it, by a person or by its quote's refusal or expiry (to the
/// provider's agents).
pub const KIND_REQUEST_CANCELLED: &str = "request_cancelled";

/// A user who may get mail, with their preferences (every kind on unless turned off).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Candidate {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub member_id: Option<Uuid>,
    pub provider_code: Option<String>,
    pub status_changed: bool,
    pub message_posted: bool,
}

impl Candidate {
    fn is_user_of(&self, member: Uuid) -> bool {
        matches!(self.role.as_str(), "member_admin" | "member_user") && self.member_id == Some(member)
    }

    fn is_agent_of(&self, provider: Option<&str>) -> bool {
        self.role == "provider_agent" && provider.is_some_and(|p| self.provider_code.as_deref() == Some(p))
    }
}

/// What happened.
#[derive(Debug, Clone, Copy)]
pub enum Notice<'a> {
    /// A request of `member_id` changed status, by `actor` (None: the platform, on a provider's answer).
    StatusChanged { member_id: Uuid, actor: Option<Uuid> },
    /// A message was posted on a request of `member_id` whose thread `provider_code`'s agents take part in.
    MessagePosted { member_id: Uuid, provider_code: Option<&'a str>, author: Uuid, author_is_member: bool },
    /// Something the agents of `provider_code` must know about a request they hold (it was cancelled, its quote
    /// was accepted), by `actor`: sent like a status change.
    ProviderStatus { provider_code: &'a str, actor: Option<Uuid> },
}

/// Who gets a mail: the member's users for a status change (a proposed quote included) and for a message from the
/// provider, the referent or the coordinator; the provider's agents for a message from the member's users and for
/// what they must know of a request they hold. Never the author, never someone who turned that kind off.
pub fn recipients<'c>(notice: &Notice<'_>, candidates: &'c [Candidate]) -> Vec<&'c Candidate> {
    candidates
        .iter()
        .filter(|c| match *notice {
            Notice::StatusChanged { member_id, actor } => {
                c.status_changed && c.is_user_of(member_id) && Some(c.user_id) != actor
            }
            Notice::MessagePosted { member_id, provider_code, author, author_is_member } => {
                let audience = if author_is_member { c.is_agent_of(provider_code) } else { c.is_user_of(member_id) };
                c.message_posted && audience && c.user_id != author
            }
            Notice::ProviderStatus { provider_code, actor } => {
                c.status_changed && c.is_agent_of(Some(provider_code)) && Some(c.user_id) != actor
            }
        })
        .collect()
}

/// The French name of a lifecycle status.
pub fn status_label(status: &str) -> &str {
    match status {
        "submitted" => "déposée",
        "triage" => "en cours d'orientation par la coordination",
        "referred" => "transmise à un partenaire",
        "accepted" => "acceptée",
        "in_progress" => "en cours de réalisation",
        "completed" => "réalisée",
        "declined" => "déclinée",
        "cancelled" => "annulée",
        "closed" => "clôturée",
        other => other,
    }
}

/// The portal page of a request (appended to the portal's base URL by the sender).
pub fn request_path(request_id: Uuid) -> String {
    format!("/demandes/{request_id}")
}

/// The facts of a status mail.
#[derive(Debug, Clone, Copy)]
pub struct StatusMail<'a> {
    pub request_subject: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub reason: &'a str,
    /// The provider's name (None: requests does not know it; the mail then names none, never a code).
    pub provider: Option<&'a str>,
}

/// A subject line: one line, at most 150 characters.
fn one_line(text: &str) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 150 { format!("{}…", line.chars().take(149).collect::<String>()) } else { line }
}

fn greeting(name: &str) -> String {
    let name = one_line(name);
    if name.is_empty() { "Bonjour,".to_owned() } else { format!("Bonjour {name},") }
}

/// Subject and body (without the link) of a status change mail.
pub fn status_mail(name: &str, m: &StatusMail<'_>) -> (String, String) {
    let to = status_label(m.to);
    let subject = one_line(&format!("[ID 77] Votre demande « {} » est {to}", m.request_subject));
    let mut body = format!(
        "{}\n\nVotre demande « {} » est passée de l'état « {} » à l'état « {to} ».\n",
        greeting(name),
        one_line(m.request_subject),
        status_label(m.from),
    );
    if let Some(provider) = m.provider.filter(|p| !p.is_empty())
        && matches!(m.to, "referred" | "accepted" | "in_progress" | "completed")
    {
        body.push_str(&format!("Partenaire : {}\n", one_line(provider)));
    }
    if !m.reason.trim().is_empty() {
        body.push_str(&format!("Motif : {}\n", m.reason.trim()));
    }
    (subject, body)
}

/// Subject and body (without the link) of a new message mail.
pub fn message_mail(
    name: &str,
    request_subject: &str,
    author: &str,
    excerpt: &str,
    attachments: u32,
) -> (String, String) {
    let subject = one_line(&format!("[ID 77] Nouveau message sur la demande « {request_subject} »"));
    let mut body = format!(
        "{}\n\n{} a écrit sur la demande « {} » :\n\n{}\n",
        greeting(name),
        one_line(author),
        one_line(request_subject),
        excerpt.trim()
    );
    match attachments {
        0 => {}
        1 => body.push_str("\n(1 pièce jointe)\n"),
        n => body.push_str(&format!("\n({n} pièces jointes)\n")),
    }
    (subject, body)
}

/// An amount in euro cents, the French way: `1 234,56 €` (a narrow no-break space between thousands, a no-break
/// space before the sign, like the portal).
pub fn euros(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let units = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push('\u{202f}');
        }
        grouped.push(digit);
    }
    format!("{sign}{grouped},{:02}\u{a0}€", abs % 100)
}

/// A VAT rate in basis points, the French way: `2000` → `20 %`, `550` → `5,5 %`.
pub fn percent(bp: i32) -> String {
    let (whole, rest) = (bp / 100, bp % 100);
    if rest == 0 {
        format!("{whole}\u{a0}%")
    } else {
        format!("{whole},{}\u{a0}%", format!("{rest:02}").trim_end_matches('0'))
    }
}

/// The amounts of a quote or an invoice, one per line: « Montant HT », « TVA (20 %) » or why there is none,
/// « Montant TTC ».
pub fn amounts(net_cents: i64, vat_cents: i64, gross_cents: i64, vat_rate_bp: Option<i32>, vat_note: &str) -> String {
    let vat = match vat_rate_bp {
        Some(rate) => format!("TVA ({}) : {}", percent(rate), euros(vat_cents)),
        None if vat_note.trim().is_empty() => "TVA : non applicable".to_owned(),
        None => format!("TVA : {}", one_line(vat_note)),
    };
    format!("Montant HT : {}\n{vat}\nMontant TTC : {}\n", euros(net_cents), euros(gross_cents))
}

/// A day, the French long way: `30 avril 2026`, `1er mai 2026`.
pub fn long_date(day: chrono::NaiveDate) -> String {
    use chrono::Datelike as _;
    const MONTHS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    let month = MONTHS.get(day.month0() as usize).copied().unwrap_or("");
    match day.day() {
        1 => format!("1er {month} {}", day.year()),
        d => format!("{d} {month} {}", day.year()),
    }
}

/// What a quote mail says of the quote.
#[derive(Debug, Clone, Copy)]
pub struct QuoteMail<'a> {
    /// `D-<issuer>-<year>-<seq>`.
    pub number: &'a str,
    pub request_subject: &'a str,
    /// Excluding VAT (HT).
    pub amount_cents: i64,
    /// The provider has yet to state the amount.
    pub amount_to_be_stated: bool,
    /// The VAT and the amount including it (TTC) as billing computed them (both 0 in events published before
    /// billing carried them: see [`QuoteMail::totals`]).
    pub vat_cents: i64,
    pub total_incl_vat_cents: i64,
    /// VAT rate in basis points (None: VAT does not apply, `vat_note` says why).
    pub vat_rate_bp: Option<i32>,
    pub vat_note: &'a str,
    pub label: &'a str,
    /// The code of the provider that issued it: whose agents are told (its name is looked up for the text).
    pub provider: &'a str,
    /// Last day to answer (None: not said).
    pub expires_on: Option<chrono::NaiveDate>,
}

impl QuoteMail<'_> {
    fn amount(&self) -> String {
        if self.amount_to_be_stated {
            "montant à préciser".to_owned()
        } else {
            format!("{} HT", euros(self.amount_cents))
        }
    }

    /// The VAT and the amount including it: billing's, else (an event published before billing stated them)
    /// computed the way billing does, the rate on the amount excluding VAT rounded half up.
    pub fn totals(&self) -> (i64, i64) {
        if self.total_incl_vat_cents != 0 || self.amount_cents == 0 {
            return (self.vat_cents, self.total_incl_vat_cents);
        }
        let vat = self.vat_rate_bp.filter(|bp| (0..=10_000).contains(bp)).map_or(0, |bp| {
            let scaled = i128::from(self.amount_cents) * i128::from(bp);
            i64::try_from((scaled + 5_000).div_euclid(10_000)).unwrap_or(0)
        });
        (vat, self.amount_cents.saturating_add(vat))
    }
}

/// Subject and body (without the link) of the mail proposing a quote to the member's users: the provider by its
/// name (`provider_name`; None: not named), the amounts excluding VAT, the VAT and including VAT.
pub fn quote_proposed_mail(name: &str, q: &QuoteMail<'_>, provider_name: Option<&str>) -> (String, String) {
    let number = one_line(q.number);
    let subject = one_line(&format!("[ID 77] Devis {number} proposé pour votre demande « {} »", q.request_subject));
    let mut body =
        format!("{}\n\nDevis {number} proposé pour votre demande « {} »", greeting(name), one_line(q.request_subject));
    if !q.label.trim().is_empty() {
        body.push_str(&format!(" : {}", one_line(q.label)));
    }
    body.push_str(".\n");
    if let Some(provider) = provider_name.map(one_line).filter(|p| !p.is_empty()) {
        body.push_str(&format!("Partenaire : {provider}\n"));
    }
    body.push('\n');
    if q.amount_to_be_stated {
        body.push_str("Montant : à préciser par le partenaire\n");
    } else {
        let (vat, gross) = q.totals();
        body.push_str(&amounts(q.amount_cents, vat, gross, q.vat_rate_bp, q.vat_note));
    }
    body.push_str("\nLe devis est à accepter ou refuser par un administrateur de votre collectivité");
    if let Some(day) = q.expires_on {
        body.push_str(&format!(" avant le {}", long_date(day)));
    }
    body.push_str(" ; le partenaire ne commence les travaux qu'une fois le devis accepté. Sans réponse, la demande est annulée.\n");
    (subject, body)
}

/// Subject and body (without the link) of the mail telling the provider's agents the member accepted the quote.
pub fn quote_accepted_mail(name: &str, q: &QuoteMail<'_>, by: &str, purchase_order: &str) -> (String, String) {
    let number = one_line(q.number);
    let subject = one_line(&format!("[ID 77] Devis {number} accepté : vous pouvez commencer"));
    let by = one_line(by);
    let accepted = if by.is_empty() { "accepté".to_owned() } else { format!("accepté par {by}") };
    let mut body = format!(
        "{}\n\nDevis {number} {accepted} pour la demande « {} » ({}) : vous pouvez commencer les travaux.\n",
        greeting(name),
        one_line(q.request_subject),
        q.amount()
    );
    if !purchase_order.trim().is_empty() {
        body.push_str(&format!("Numéro d'engagement (bon de commande) : {}\n", one_line(purchase_order)));
    }
    (subject, body)
}

/// Why a request the provider held was cancelled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CancelCause<'a> {
    /// A member's user or the coordinator cancelled it.
    #[default]
    Person,
    /// A member admin refused its quote (number).
    QuoteRefused(&'a str),
    /// Its quote (number) expired without an answer.
    QuoteExpired(&'a str),
}

/// Subject and body (without the link) of the mail telling the provider's agents that a request they held was
/// cancelled, by `by` (empty: the platform), for `reason`.
pub fn cancelled_mail(
    name: &str,
    request_subject: &str,
    by: &str,
    reason: &str,
    cause: CancelCause<'_>,
) -> (String, String) {
    let request = one_line(request_subject);
    let subject = one_line(&match cause {
        CancelCause::Person => format!("[ID 77] Demande « {request} » annulée"),
        CancelCause::QuoteRefused(number) => format!("[ID 77] Devis {number} refusé : demande « {request} » annulée"),
        CancelCause::QuoteExpired(number) => format!("[ID 77] Devis {number} expiré : demande « {request} » annulée"),
    });
    let by = one_line(by);
    let mut body = format!("{}\n\nLa demande « {request} » a été annulée", greeting(name));
    if !by.is_empty() {
        body.push_str(&format!(" par {by}"));
    }
    if !reason.trim().is_empty() {
        body.push_str(&format!(" : {}", reason.trim()));
    }
    body.push_str("\n\nElle ne vous est plus confiée : ne commencez pas les travaux, ou arrêtez-les.\n");
    (subject, body)
}

/// The whole body: the text, the link to the portal page and a footer telling how to stop these mails.
pub fn full_body(body: &str, portal_url: &str, link_path: &str) -> String {
    format!(
        "{body}\nVoir la demande : {}{link_path}\n\n-- \nID 77, l'ingénierie départementale de Seine-et-Marne.\n\
         Vous pouvez choisir les courriels que vous recevez dans vos préférences de notification.\n",
        portal_url.trim_end_matches('/')
    )
}

/// Delay before the next try after `attempts` failed ones: 30 s doubling, at most an hour.
pub fn backoff(attempts: i32) -> std::time::Duration {
    let exp = attempts.clamp(1, 8) - 1;
    std::time::Duration::from_secs((30u64 << exp).min(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(role: &str, member: Option<Uuid>, provider: Option<&str>) -> Candidate {
        Candidate {
            user_id: Uuid::new_v4(),
            email: format!("{role}@example.fr"),
            display_name: role.to_owned(),
            role: role.to_owned(),
            member_id: member,
            provider_code: provider.map(str::to_owned),
            status_changed: true,
            message_posted: true,
        }
    }

    fn ids(list: &[&Candidate]) -> Vec<Uuid> {
        list.iter().map(|c| c.user_id).collect()
    }

    #[test]
    fn status_changes_go_to_the_members_users_only_and_never_to_the_actor() {
        let member = Uuid::new_v4();
        let other = Uuid::new_v4();
        let admin = candidate("member_admin", Some(member), None);
        let user = candidate("member_user", Some(member), None);
        let foreign = candidate("member_admin", Some(other), None);
        let agent = candidate("provider_agent", None, Some("caue77"));
        let coordinator = candidate("coordinator", None, None);
        let all = vec![admin.clone(), user.clone(), foreign, agent, coordinator];
        let system = recipients(&Notice::StatusChanged { member_id: member, actor: None }, &all);
        assert_eq!(ids(&system), vec![admin.user_id, user.user_id]);
        let by_admin = recipients(&Notice::StatusChanged { member_id: member, actor: Some(admin.user_id) }, &all);
        assert_eq!(ids(&by_admin), vec![user.user_id]);
    }

    #[test]
    fn messages_go_to_the_other_side_and_honour_preferences() {
        let member = Uuid::new_v4();
        let admin = candidate("member_admin", Some(member), None);
        let mut quiet = candidate("member_user", Some(member), None);
        quiet.message_posted = false;
        let agent = candidate("provider_agent", None, Some("caue77"));
        let other_agent = candidate("provider_agent", None, Some("dir-routes"));
        let all = vec![admin.clone(), quiet.clone(), agent.clone(), other_agent];
        // From the member: the provider's agents.
        let from_member = Notice::MessagePosted {
            member_id: member,
            provider_code: Some("caue77"),
            author: admin.user_id,
            author_is_member: true,
        };
        assert_eq!(ids(&recipients(&from_member, &all)), vec![agent.user_id]);
        // From the provider: the member's users who want message mails.
        let from_agent = Notice::MessagePosted {
            member_id: member,
            provider_code: Some("caue77"),
            author: agent.user_id,
            author_is_member: false,
        };
        assert_eq!(ids(&recipients(&from_agent, &all)), vec![admin.user_id]);
        // No provider on the thread: a member's message goes to nobody.
        let alone = Notice::MessagePosted {
            member_id: member,
            provider_code: None,
            author: admin.user_id,
            author_is_member: true,
        };
        assert!(recipients(&alone, &all).is_empty());
        // Status mails still go to the one who turned message mails off.
        let status = recipients(&Notice::StatusChanged { member_id: member, actor: None }, &all);
        assert_eq!(ids(&status), vec![admin.user_id, quiet.user_id]);
    }

    #[test]
    fn mails_are_french_with_a_one_line_subject_and_the_link() {
        let mail = StatusMail {
            request_subject: "Diagnostic\nvoirie",
            from: "referred",
            to: "accepted",
            reason: "",
            provider: Some("CAUE 77"),
        };
        let (subject, body) = status_mail("Mme Dupont", &mail);
        assert_eq!(subject, "[ID 77] Votre demande « Diagnostic voirie » est acceptée");
        assert!(body.starts_with("Bonjour Mme Dupont,"), "{body}");
        assert!(body.contains("« transmise à un partenaire » à l'état « acceptée »"), "{body}");
        assert!(body.contains("Partenaire : CAUE 77\n"), "{body}");
        let referred = StatusMail { from: "submitted", to: "referred", reason: "Orientée vers CAUE 77", ..mail };
        let (subject, body) = status_mail("", &referred);
        assert_eq!(subject, "[ID 77] Votre demande « Diagnostic voirie » est transmise à un partenaire");
        assert!(body.contains("« déposée » à l'état « transmise à un partenaire »"), "{body}");
        assert!(body.contains("Motif : Orientée vers CAUE 77\n"), "{body}");
        // A provider whose name requests does not know: no « Partenaire » line rather than a code.
        let (_, body) = status_mail("", &StatusMail { provider: None, ..mail });
        assert!(!body.contains("Partenaire"), "{body}");
        let full = full_body(&body, "https://id77.example.fr/", "/demandes/abc");
        assert!(full.contains("Voir la demande : https://id77.example.fr/demandes/abc\n"), "{full}");
        let (subject, body) = message_mail("", &"x".repeat(300), "CAUE 77", "Bonjour, voici le devis.", 1);
        assert!(subject.chars().count() <= 150, "{subject}");
        assert!(body.starts_with("Bonjour,\n\nCAUE 77 a écrit"), "{body}");
        assert!(body.contains("(1 pièce jointe)"), "{body}");
    }

    #[test]
    fn provider_notices_go_to_that_providers_agents_who_want_status_mails() {
        let member = Uuid::new_v4();
        let admin = candidate("member_admin", Some(member), None);
        let agent = candidate("provider_agent", None, Some("caue77"));
        let mut quiet = candidate("provider_agent", None, Some("caue77"));
        quiet.status_changed = false;
        let other = candidate("provider_agent", None, Some("dir-routes"));
        let all = vec![admin.clone(), agent.clone(), quiet, other];
        let notice = Notice::ProviderStatus { provider_code: "caue77", actor: Some(admin.user_id) };
        assert_eq!(ids(&recipients(&notice, &all)), vec![agent.user_id]);
        let by_agent = Notice::ProviderStatus { provider_code: "caue77", actor: Some(agent.user_id) };
        assert!(recipients(&by_agent, &all).is_empty(), "never the actor");
    }

    #[test]
    fn amounts_are_french() {
        assert_eq!(euros(0), "0,00\u{a0}€");
        assert_eq!(euros(5), "0,05\u{a0}€");
        assert_eq!(euros(120_000), "1\u{202f}200,00\u{a0}€");
        assert_eq!(euros(123_456_789), "1\u{202f}234\u{202f}567,89\u{a0}€");
        assert_eq!(euros(-99_950), "-999,50\u{a0}€");
        let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap_or_default();
        assert_eq!((long_date(day(4, 30)), long_date(day(5, 1))), ("30 avril 2026".into(), "1er mai 2026".into()));
    }

    #[test]
    fn quote_and_cancellation_mails_say_who_what_and_why() {
        let q = QuoteMail {
            number: "D-caue77-2026-000012",
            request_subject: "Diagnostic voirie",
            amount_cents: 250_000,
            amount_to_be_stated: false,
            vat_cents: 50_000,
            total_incl_vat_cents: 300_000,
            vat_rate_bp: Some(2000),
            vat_note: "",
            label: "Étude préalable",
            provider: "caue77",
            expires_on: chrono::NaiveDate::from_ymd_opt(2026, 4, 30),
        };
        let (subject, body) = quote_proposed_mail("Mme Dupont", &q, Some("CAUE 77"));
        assert_eq!(subject, "[ID 77] Devis D-caue77-2026-000012 proposé pour votre demande « Diagnostic voirie »");
        assert!(
            body.contains(
                "Devis D-caue77-2026-000012 proposé pour votre demande « Diagnostic voirie » : Étude préalable.\n\
                 Partenaire : CAUE 77\n\n\
                 Montant HT : 2\u{202f}500,00\u{a0}€\n\
                 TVA (20\u{a0}%) : 500,00\u{a0}€\n\
                 Montant TTC : 3\u{202f}000,00\u{a0}€\n"
            ),
            "{body}"
        );
        assert!(
            body.contains("à accepter ou refuser par un administrateur de votre collectivité avant le 30 avril 2026"),
            "{body}"
        );
        let (subject, body) = quote_accepted_mail("", &q, "Marie Dupont", "ENG-2026-42");
        assert_eq!(subject, "[ID 77] Devis D-caue77-2026-000012 accepté : vous pouvez commencer");
        assert!(
            body.starts_with("Bonjour,\n\nDevis D-caue77-2026-000012 accepté par Marie Dupont pour la demande"),
            "{body}"
        );
        assert!(body.contains("vous pouvez commencer") && body.contains("ENG-2026-42"), "{body}");
        let (subject, body) =
            cancelled_mail("Agent", "Diagnostic voirie", "Marie Dupont", "projet reporté", CancelCause::Person);
        assert_eq!(subject, "[ID 77] Demande « Diagnostic voirie » annulée");
        assert!(
            body.contains("La demande « Diagnostic voirie » a été annulée par Marie Dupont : projet reporté"),
            "{body}"
        );
        let reason = "Devis D-caue77-2026-000012 expiré sans réponse";
        let (subject, body) =
            cancelled_mail("", "Diagnostic voirie", "", reason, CancelCause::QuoteExpired("D-caue77-2026-000012"));
        assert_eq!(subject, "[ID 77] Devis D-caue77-2026-000012 expiré : demande « Diagnostic voirie » annulée");
        assert!(body.contains(&format!("a été annulée : {reason}")), "{body}");
        let (subject, _) =
            cancelled_mail("", "Diagnostic voirie", "M. X", "r", CancelCause::QuoteRefused("D-caue77-2026-000012"));
        assert!(subject.starts_with("[ID 77] Devis D-caue77-2026-000012 refusé"), "{subject}");
    }

    #[test]
    fn the_quote_mail_names_the_provider_and_states_ht_vat_and_ttc() {
        let q = QuoteMail {
            number: "D-sdesm-2026-000003",
            request_subject: "Éclairage public",
            amount_cents: 123_450,
            amount_to_be_stated: false,
            vat_cents: 24_690,
            total_incl_vat_cents: 148_140,
            vat_rate_bp: Some(2000),
            vat_note: "",
            label: "",
            provider: "sdesm",
            expires_on: None,
        };
        let (_, body) = quote_proposed_mail("", &q, Some("SDESM — Syndicat départemental des énergies"));
        assert!(body.contains("Partenaire : SDESM — Syndicat départemental des énergies\n"), "{body}");
        assert!(body.contains("Montant HT : 1\u{202f}234,50\u{a0}€\n"), "{body}");
        assert!(body.contains("TVA (20\u{a0}%) : 246,90\u{a0}€\nMontant TTC : 1\u{202f}481,40\u{a0}€\n"), "{body}");
        // Unknown name: no « Partenaire » line, and the code appears nowhere but in the quote's number.
        let (_, body) = quote_proposed_mail("", &q, None);
        assert!(!body.contains("Partenaire :") && body.matches("sdesm").count() == 1, "{body}");
        // An event published before billing stated the VAT: computed the way billing does (half up).
        let legacy =
            QuoteMail { vat_cents: 0, total_incl_vat_cents: 0, vat_rate_bp: Some(550), amount_cents: 1_005, ..q };
        assert_eq!(legacy.totals(), (55, 1_060));
        let (_, body) = quote_proposed_mail("", &legacy, None);
        assert!(body.contains("TVA (5,5\u{a0}%) : 0,55\u{a0}€\nMontant TTC : 10,60\u{a0}€\n"), "{body}");
        // VAT does not apply: why, and TTC = HT.
        let exempt = QuoteMail {
            vat_cents: 0,
            total_incl_vat_cents: 123_450,
            vat_rate_bp: None,
            vat_note: "TVA non applicable, art. 256 B du CGI",
            ..q
        };
        let (_, body) = quote_proposed_mail("", &exempt, None);
        assert!(
            body.contains("TVA : TVA non applicable, art. 256 B du CGI\nMontant TTC : 1\u{202f}234,50\u{a0}€"),
            "{body}"
        );
        let stated_later = QuoteMail { amount_to_be_stated: true, amount_cents: 0, total_incl_vat_cents: 0, ..q };
        let (_, body) = quote_proposed_mail("", &stated_later, None);
        assert!(body.contains("Montant : à préciser par le partenaire\n") && !body.contains("Montant HT"), "{body}");
        assert_eq!(
            (percent(2000), percent(550), percent(210)),
            ("20\u{a0}%".into(), "5,5\u{a0}%".into(), "2,1\u{a0}%".into())
        );
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1).as_secs(), 30);
        assert_eq!(backoff(2).as_secs(), 60);
        assert_eq!(backoff(5).as_secs(), 480);
        assert_eq!(backoff(50).as_secs(), 3600);
        assert_eq!(backoff(0).as_secs(), 30);
    }
}
