-- Platform tables present in every service database. Service migrations start at version 100.

-- Transactional outbox: written in the same transaction as the state change it announces.
CREATE TABLE outbox (
    id           uuid        PRIMARY KEY,
    -- Publication order; the relay publishes in this order.
    seq          bigserial   NOT NULL UNIQUE,
    -- Logical subject (without the deployment's subject prefix).
    subject      text        NOT NULL,
    event_type   text        NOT NULL,
    payload      bytea       NOT NULL,
    -- Extra message headers (e.g. traceparent).
    headers      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;

-- Idempotent inbox: a consumer records each message id in the same transaction as its effect.
CREATE TABLE inbox (
    consumer     text        NOT NULL,
    message_id   text        NOT NULL,
    subject      text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
