-- The portal's sessions (ADR 0009, addendum "Sessions in PostgreSQL"): shared by every portal replica, they
-- survive a restart. A row exists only while a session has something to keep (a signed-in user, the gateway's
-- tokens, a one-time message); a visitor who has not signed in is a cookie and nothing else.
CREATE TABLE portal_session (
    -- SHA-256 of the cookie value: the cookie itself is never stored, so a copy of this table opens nothing.
    id_hash bytea PRIMARY KEY CHECK (octet_length(id_hash) = 32),
    -- The user, the gateway's access and refresh tokens and the one-time message, as JSON sealed with
    -- ChaCha20-Poly1305 (12-byte random nonce || ciphertext || tag) under a key derived from the cookie value,
    -- the row's id_hash as associated data: readable only with the browser's cookie.
    sealed bytea NOT NULL,
    signed_in boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Idle expiry (ID77_PORTAL_SESSION_IDLE_MINUTES) is measured on the database's clock, the same for every replica.
    last_seen timestamptz NOT NULL DEFAULT now()
);

-- The sweeper deletes by age.
CREATE INDEX portal_session_last_seen ON portal_session (last_seen);
