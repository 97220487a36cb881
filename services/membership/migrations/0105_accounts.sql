-- Accounts by mail: a durable mail queue (written in the transaction of the change it tells about), password
-- resets, and refused applications.

-- Mails to send (invitations, password resets, refusals). The body is plain text without the link; the sender
-- appends the portal's base URL and `link_path`. Once sent, `link_path` (which may carry a one-time token) is
-- cleared.
CREATE TABLE mail_outbox (
    id              uuid        PRIMARY KEY,
    email           text        NOT NULL,
    kind            text        NOT NULL,
    subject         text        NOT NULL,
    body            text        NOT NULL,
    link_path       text        NOT NULL,
    created_at      timestamptz NOT NULL,
    -- Not before: the next try (a claim pushes it forward as a lease; a failure by the backoff).
    next_attempt_at timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    sent_at         timestamptz,
    last_error      text
);
CREATE INDEX mail_outbox_pending ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;

-- Password resets, stored as the SHA-256 of the token (the token itself only travels in the mail).
CREATE TABLE password_reset (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    uuid        NOT NULL REFERENCES app_user (id),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX password_reset_by_user ON password_reset (user_id);

-- The coordinator may refuse an application, with a reason.
ALTER TABLE member DROP CONSTRAINT IF EXISTS member_status_check;
ALTER TABLE member ADD CONSTRAINT member_status_check
    CHECK (status IN ('pending', 'active', 'suspended', 'withdrawn', 'refused'));
ALTER TABLE member ADD COLUMN refusal_reason text;
ALTER TABLE member ADD COLUMN refused_at timestamptz;
