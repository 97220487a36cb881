-- Identity: accounts, sessions (refresh-token families), invitations, signing keys and the audit log.

-- A person who logs in. Member users belong to a member, provider agents to a provider; Département agents
-- (coordinator, referent, operator) to neither.
CREATE TABLE app_user (
    id            uuid        PRIMARY KEY,
    -- Lowercased.
    email         text        NOT NULL CHECK (email = lower(email)),
    display_name  text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('member_admin', 'member_user', 'provider_agent',
                                                       'coordinator', 'referent', 'operator')),
    member_id     uuid        REFERENCES member (id),
    provider_code text,
    -- argon2id PHC string; NULL until the invitation is accepted.
    password_hash text,
    -- False until the invitation is accepted, and again once removed.
    active        boolean     NOT NULL DEFAULT false,
    -- When the recent failed logins happened (only those of the last lock-out window are kept).
    failed_logins timestamptz[] NOT NULL DEFAULT '{}',
    locked_until  timestamptz,
    created_at    timestamptz NOT NULL,
    removed_at    timestamptz,
    CHECK ((role IN ('member_admin', 'member_user')) = (member_id IS NOT NULL)),
    CHECK ((role = 'provider_agent') = (provider_code IS NOT NULL)),
    CHECK (NOT active OR password_hash IS NOT NULL)
);
-- One live account per email; a removed account frees its email.
CREATE UNIQUE INDEX app_user_by_email ON app_user (email) WHERE removed_at IS NULL;
CREATE INDEX app_user_by_member ON app_user (member_id, created_at, id) WHERE member_id IS NOT NULL;
CREATE INDEX app_user_by_creation ON app_user (created_at, id);

-- The Département agent (a referent user) who follows a member.
ALTER TABLE member ADD COLUMN referent_user_id uuid REFERENCES app_user (id);
CREATE INDEX member_by_referent ON member (referent_user_id, applied_at, id) WHERE referent_user_id IS NOT NULL;

-- A login session: the family of refresh tokens that rotate from one login. Revoking it (logout, reuse of a
-- used token, removal of the user) ends every token of the family.
CREATE TABLE refresh_family (
    id          uuid        PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES app_user (id),
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    revoked_why text
);
CREATE INDEX refresh_family_by_user ON refresh_family (user_id) WHERE revoked_at IS NULL;

-- Refresh tokens, stored as the SHA-256 of the token (the token itself is only ever with the client).
CREATE TABLE refresh_token (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    family_id  uuid        NOT NULL REFERENCES refresh_family (id),
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    -- Set when the token was exchanged for a new one; presenting it again is a reuse.
    used_at    timestamptz
);
CREATE INDEX refresh_token_by_family ON refresh_token (family_id);

-- One-time invitations, stored as the SHA-256 of the token.
CREATE TABLE invitation (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    uuid        NOT NULL REFERENCES app_user (id),
    -- NULL for the bootstrap operator.
    invited_by uuid        REFERENCES app_user (id),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX invitation_by_user ON invitation (user_id);

-- Ed25519 signing keys of the access tokens. The newest key without `retire_after` signs; every key not past
-- its `retire_after` is published (JWKS) and verifies.
CREATE TABLE signing_key (
    kid          text        PRIMARY KEY,
    secret       bytea       NOT NULL CHECK (length(secret) = 32),
    created_at   timestamptz NOT NULL,
    retire_after timestamptz
);

-- Security events, newest first for the operator.
CREATE TABLE audit_event (
    id            uuid        PRIMARY KEY,
    kind          text        NOT NULL,
    actor_user_id uuid,
    subject       text        NOT NULL DEFAULT '',
    client        text        NOT NULL DEFAULT '',
    detail        text        NOT NULL DEFAULT '',
    at            timestamptz NOT NULL
);
CREATE INDEX audit_event_by_time ON audit_event (at DESC, id DESC);
CREATE INDEX audit_event_by_kind ON audit_event (kind, at DESC, id DESC);
