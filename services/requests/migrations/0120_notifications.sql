-- Notifications (ADR 0012): who gets mail (a read model of membership's accounts, fed by user.changed), what
-- each user wants, and the mails to send (written in the transaction of the change they tell about).

CREATE TABLE notification_recipient (
    user_id uuid PRIMARY KEY,
    email text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    role text NOT NULL,
    member_id uuid,
    provider_code text,
    active boolean NOT NULL,
    -- membership's version of the account: an older event changes nothing.
    version bigint NOT NULL
);
CREATE INDEX notification_recipient_member ON notification_recipient (member_id) WHERE active;
CREATE INDEX notification_recipient_provider ON notification_recipient (provider_code) WHERE active;

CREATE TABLE notification_preference (
    user_id uuid PRIMARY KEY,
    status_changed boolean NOT NULL DEFAULT true,
    message_posted boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL
);

CREATE TABLE mail_outbox (
    id uuid PRIMARY KEY,
    -- The outbox event the mail tells about (request.status_changed / message.posted): one mail per recipient.
    event_id uuid NOT NULL,
    recipient_user_id uuid NOT NULL,
    email text NOT NULL,
    kind text NOT NULL,
    request_id uuid NOT NULL,
    subject text NOT NULL,
    -- Plain text without the link; the sender appends the portal link (its base URL is configuration).
    body text NOT NULL,
    link_path text NOT NULL,
    created_at timestamptz NOT NULL,
    -- Not before: the next try (a claim pushes it forward as a lease; a failure by the backoff).
    next_attempt_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    sent_at timestamptz,
    last_error text,
    UNIQUE (event_id, recipient_user_id)
);
CREATE INDEX mail_outbox_pending ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;
