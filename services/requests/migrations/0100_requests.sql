-- Read model of memberships, fed by membership events (never by calling membership).
CREATE TABLE member_status (
    member_id   uuid        PRIMARY KEY,
    status      text        NOT NULL,
    -- Time of the event that set the status; older events do not overwrite newer ones.
    as_of       timestamptz NOT NULL
);

-- Read model of offers, fed by catalogue events.
CREATE TABLE offer (
    offer_id      uuid    PRIMARY KEY,
    code          text    NOT NULL,
    title         text    NOT NULL,
    provider_code text    NOT NULL,
    version       integer NOT NULL
);

CREATE TABLE request (
    id              uuid        PRIMARY KEY,
    member_id       uuid        NOT NULL,
    offer_id        uuid        NOT NULL,
    subject         text        NOT NULL,
    description     text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('submitted', 'referred', 'accepted', 'declined', 'cancelled', 'completed')),
    provider_code   text,
    idempotency_key text,
    submitted_at    timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (member_id, idempotency_key)
);
CREATE INDEX request_by_member ON request (member_id, submitted_at, id);

CREATE TABLE request_history (
    request_id uuid        NOT NULL REFERENCES request (id),
    seq        bigserial   NOT NULL,
    status     text        NOT NULL,
    reason     text        NOT NULL DEFAULT '',
    at         timestamptz NOT NULL,
    PRIMARY KEY (request_id, seq)
);
