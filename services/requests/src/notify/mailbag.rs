//! The mails of one transaction, gathered and written together: recipients read once per member and provider, the
//! mails inserted in one statement before the commit ([`Mailbag::write`]). A consumer's batch shares one bag, so a
//! batch of events costs two statements of mail however many events and recipients it holds (issue 23); a single
//! change writes its own bag.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::domain::Candidate;

/// A mail to queue (and the in-portal notification it is).
#[derive(Debug, Clone)]
pub struct Mail {
    /// With the recipient, the mail's key: a second mail for the same event and recipient is dropped.
    pub event_id: Uuid,
    pub recipient: Uuid,
    pub email: String,
    pub kind: String,
    /// None: a mail about no request (a held training session's invoice, an application).
    pub request_id: Option<Uuid>,
    pub subject: String,
    pub body: String,
    pub link_path: String,
    pub at: DateTime<Utc>,
}

/// Recipients read so far and mails not written yet. Recipients are read in the transaction that writes the
/// mails: a bag lives no longer than its transaction.
#[derive(Debug, Default)]
pub struct Mailbag {
    /// Every active recipient with an address of the members and providers read so far, by user id.
    candidates: Vec<Candidate>,
    members: HashSet<Uuid>,
    providers: HashSet<String>,
    mails: Vec<Mail>,
    keys: HashSet<(Uuid, Uuid)>,
}

impl Mailbag {
    /// Reads the recipients of those of `members` and `providers` not read yet, in one statement (none when all
    /// were).
    pub async fn load(
        &mut self,
        conn: &mut PgConnection,
        members: &[Uuid],
        providers: &[&str],
    ) -> Result<(), sqlx::Error> {
        let members: Vec<Uuid> =
            members.iter().copied().filter(|m| !self.members.contains(m)).collect::<HashSet<_>>().into_iter().collect();
        let providers: Vec<String> = providers
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty() && !self.providers.contains(*p))
            .map(str::to_owned)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if members.is_empty() && providers.is_empty() {
            return Ok(());
        }
        let read: Vec<Candidate> = sqlx::query_as(
            "SELECT r.user_id, r.email, r.display_name, r.role, r.member_id, r.provider_code,
                    COALESCE(p.status_changed, true) AS status_changed,
                    COALESCE(p.message_posted, true) AS message_posted
             FROM notification_recipient r LEFT JOIN notification_preference p ON p.user_id = r.user_id
             WHERE r.active AND r.email <> '' AND (r.member_id = ANY($1) OR r.provider_code = ANY($2))",
        )
        .bind(&members)
        .bind(&providers)
        .fetch_all(conn)
        .await?;
        self.members.extend(members);
        self.providers.extend(providers);
        let known: HashSet<Uuid> = self.candidates.iter().map(|c| c.user_id).collect();
        self.candidates.extend(read.into_iter().filter(|c| !known.contains(&c.user_id)));
        self.candidates.sort_by_key(|c| c.user_id);
        Ok(())
    }

    /// The active users of `member_id` and the active agents of `provider`, with their preferences, by user id.
    pub async fn candidates(
        &mut self,
        conn: &mut PgConnection,
        member_id: Uuid,
        provider: Option<&str>,
    ) -> Result<Vec<Candidate>, sqlx::Error> {
        self.load(conn, &[member_id], provider.as_slice()).await?;
        Ok(self
            .candidates
            .iter()
            .filter(|c| {
                c.member_id == Some(member_id) || provider.is_some_and(|p| c.provider_code.as_deref() == Some(p))
            })
            .cloned()
            .collect())
    }

    /// The active agents of `provider`, with their preferences, by user id.
    pub async fn agents(&mut self, conn: &mut PgConnection, provider: &str) -> Result<Vec<Candidate>, sqlx::Error> {
        self.load(conn, &[], &[provider]).await?;
        Ok(self
            .candidates
            .iter()
            .filter(|c| c.role == "provider_agent" && c.provider_code.as_deref() == Some(provider))
            .cloned()
            .collect())
    }

    /// Adds a mail; one for an event and recipient already in the bag is dropped.
    pub fn push(&mut self, mail: Mail) {
        if self.keys.insert((mail.event_id, mail.recipient)) {
            self.mails.push(mail);
        }
    }

    /// The mails not written yet.
    pub fn pending(&self) -> &[Mail] {
        &self.mails
    }

    /// Writes the mails gathered, in one statement (none when there are none), and empties the bag of them; a mail
    /// already queued for its event and recipient (a redelivery) is dropped. Returns how many were new.
    pub async fn write(&mut self, conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
        if self.mails.is_empty() {
            return Ok(0);
        }
        let mails = std::mem::take(&mut self.mails);
        self.keys.clear();
        let n = mails.len();
        let (mut ids, mut events, mut recipients, mut emails, mut kinds) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut requests, mut subjects, mut bodies, mut links, mut ats) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for m in mails {
            ids.push(Uuid::now_v7());
            events.push(m.event_id);
            recipients.push(m.recipient);
            emails.push(m.email);
            kinds.push(m.kind);
            requests.push(m.request_id);
            subjects.push(m.subject);
            bodies.push(m.body);
            links.push(m.link_path);
            ats.push(m.at);
        }
        let done = sqlx::query(
            "INSERT INTO mail_outbox (id, event_id, recipient_user_id, email, kind, request_id, subject, body,
                                      link_path, created_at, next_attempt_at)
             SELECT m.*, now()
             FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::uuid[], $7::text[],
                         $8::text[], $9::text[], $10::timestamptz[]) AS m
             ON CONFLICT (event_id, recipient_user_id) DO NOTHING",
        )
        .bind(ids)
        .bind(events)
        .bind(recipients)
        .bind(emails)
        .bind(kinds)
        .bind(requests)
        .bind(subjects)
        .bind(bodies)
        .bind(links)
        .bind(ats)
        .execute(conn)
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(event_id: Uuid, recipient: Uuid) -> Mail {
        Mail {
            event_id,
            recipient,
            email: "a@example.fr".into(),
            kind: "status_changed".into(),
            request_id: None,
            subject: "s".into(),
            body: "b".into(),
            link_path: "/".into(),
            at: Utc::now(),
        }
    }

    #[test]
    fn a_second_mail_for_an_event_and_recipient_is_dropped() {
        let (event, other, user) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut bag = Mailbag::default();
        bag.push(mail(event, user));
        bag.push(mail(event, user));
        bag.push(mail(other, user));
        assert_eq!(bag.pending().len(), 2);
    }
}
