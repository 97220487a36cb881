-- Login throttling (src/identity/throttle.rs): progressive delays per (account, client address), a spacing for
-- new addresses on an account under attack, and the addresses each account signed in from (known clients).
-- Accounts are keyed by the normalized email, whether or not an account has it.

CREATE TABLE login_throttle_pair (
    email           text        NOT NULL,
    -- The client address (IPv6 by its /64).
    client          text        NOT NULL,
    failures        integer     NOT NULL CHECK (failures >= 0),
    last_failure_at timestamptz NOT NULL,
    -- No attempt from this address on this account before this time.
    next_attempt_at timestamptz NOT NULL,
    PRIMARY KEY (email, client)
);
CREATE INDEX login_throttle_pair_by_age ON login_throttle_pair (last_failure_at);

CREATE TABLE login_throttle_account (
    email           text        PRIMARY KEY,
    -- Failures from every address since the last quiet period.
    failures        integer     NOT NULL CHECK (failures >= 0),
    last_failure_at timestamptz NOT NULL,
    -- No attempt from an address that is not a known client before this time.
    next_attempt_at timestamptz NOT NULL
);
CREATE INDEX login_throttle_account_by_age ON login_throttle_account (last_failure_at);

CREATE TABLE login_known_client (
    email           text        NOT NULL,
    client          text        NOT NULL,
    last_success_at timestamptz NOT NULL,
    PRIMARY KEY (email, client)
);
CREATE INDEX login_known_client_by_age ON login_known_client (last_success_at);

-- The lock-out these replace is gone; its columns stay until no running release reads them.
COMMENT ON COLUMN app_user.failed_logins IS 'unused since 0104_login_throttle (kept for rolling upgrades)';
COMMENT ON COLUMN app_user.locked_until IS 'unused since 0104_login_throttle (kept for rolling upgrades)';
