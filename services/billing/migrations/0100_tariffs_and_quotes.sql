-- Read model of the catalogue's offers, fed by `OfferPublished`; only a newer version replaces a row.
CREATE TABLE tariff (
    offer_id      uuid        PRIMARY KEY,
    offer_code    text        NOT NULL,
    title         text        NOT NULL,
    provider_code text        NOT NULL,
    billed        boolean     NOT NULL,
    -- Flat price in euro cents, VAT excluded.
    price_cents   bigint      NOT NULL CHECK (price_cents >= 0),
    version       integer     NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Last number issued per kind of document, issuer and year. The row is locked by the transaction that takes
-- the next number and commits with the document, so numbers are gapless and unique under concurrency.
CREATE TABLE number_sequence (
    document    text    NOT NULL CHECK (document IN ('quote', 'invoice', 'credit_note')),
    issuer_code text    NOT NULL,
    year        integer NOT NULL,
    last_value  bigint  NOT NULL CHECK (last_value >= 1),
    PRIMARY KEY (document, issuer_code, year)
);

-- Quotes for billed offers, at most one per accepted referral.
CREATE TABLE quote (
    id            uuid        PRIMARY KEY,
    -- D-<issuer>-<year>-<sequence:06>
    number        text        NOT NULL UNIQUE,
    issuer_code   text        NOT NULL,
    year          integer     NOT NULL,
    sequence      bigint      NOT NULL CHECK (sequence >= 1),
    member_id     uuid        NOT NULL,
    request_id    uuid        NOT NULL,
    referral_id   uuid        NOT NULL UNIQUE,
    offer_id      uuid        NOT NULL,
    offer_version integer     NOT NULL,
    label         text        NOT NULL,
    amount_cents  bigint      NOT NULL CHECK (amount_cents > 0),
    currency      char(3)     NOT NULL,
    status        text        NOT NULL CHECK (status IN ('issued')),
    issued_at     timestamptz NOT NULL,
    UNIQUE (issuer_code, year, sequence)
);
CREATE INDEX quote_by_member ON quote (member_id, issued_at, id);
CREATE INDEX quote_by_request ON quote (request_id, issued_at, id);
CREATE INDEX quote_by_issued_at ON quote (issued_at, id);
