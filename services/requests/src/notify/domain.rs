//! Pure rules of the notifications: who gets a mail about what, and what it says (French, plain text).

use uuid::Uuid;

pub const KIND_STATUS_CHANGED: &str = "status_changed";
pub const KIND_MESSAGE_POSTED: &str = "message_posted";

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
}

/// Who gets a mail: the member's users for a status change and for a message from the provider, the referent or
/// the coordinator; the provider's agents for a message from the member's users. Never the author, never someone
/// who turned that kind off.
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
        body.push_str(&format!("Partenaire : {provider}\n"));
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
            provider: Some("caue77"),
        };
        let (subject, body) = status_mail("Mme Dupont", &mail);
        assert_eq!(subject, "[ID 77] Votre demande « Diagnostic voirie » est acceptée");
        assert!(body.starts_with("Bonjour Mme Dupont,"), "{body}");
        assert!(body.contains("« transmise à un partenaire » à l'état « acceptée »"), "{body}");
        assert!(body.contains("Partenaire : caue77"), "{body}");
        let full = full_body(&body, "https://id77.example.fr/", "/demandes/abc");
        assert!(full.contains("Voir la demande : https://id77.example.fr/demandes/abc\n"), "{full}");
        let (subject, body) = message_mail("", &"x".repeat(300), "CAUE 77", "Bonjour, voici le devis.", 1);
        assert!(subject.chars().count() <= 150, "{subject}");
        assert!(body.starts_with("Bonjour,\n\nCAUE 77 a écrit"), "{body}");
        assert!(body.contains("(1 pièce jointe)"), "{body}");
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
