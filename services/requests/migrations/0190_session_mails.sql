-- Mails of training sessions (issue 22, ADR 0016): the catalogue publishes sessions and registrations, requests
-- mails the participants. A participant is a named person with an e-mail address, not necessarily an account:
-- such a mail has no recipient user (it is in the portal's notifications only when an account has that address)
-- and is keyed by its event and the address instead.
ALTER TABLE mail_outbox ALTER COLUMN recipient_user_id DROP NOT NULL;
ALTER TABLE mail_outbox ADD COLUMN participant boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX mail_outbox_participant_key ON mail_outbox (event_id, lower(email)) WHERE participant;

-- The sessions as the catalogue last told them (`session.*`), for the registration mails: what, when, where.
CREATE TABLE training_session (
    id uuid PRIMARY KEY,
    offer_title text NOT NULL,
    provider_name text NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    online boolean NOT NULL,
    commune_name text NOT NULL,
    address text NOT NULL,
    online_link text NOT NULL,
    status text NOT NULL,
    -- When the catalogue said it (the event's occurred_at): an older event changes nothing.
    updated_at timestamptz NOT NULL
);
