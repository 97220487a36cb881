-- Who delivers offers: a directorate of the Département or an associated organisation.
CREATE TABLE provider (
    -- Stable slug, also a NATS subject token (lowercase ASCII letters, digits, dashes).
    code          text        PRIMARY KEY CHECK (code ~ '^[a-z0-9-]{1,64}$'),
    name          text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('departmental_service', 'associated_organisation')),
    contact_email text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The offers of the catalogue. The id is assigned at first insert and never changes; the code is the seed's
-- stable slug; version grows by one each time the published content changes.
CREATE TABLE offer (
    id            uuid        PRIMARY KEY,
    code          text        NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9-]{1,64}$'),
    title         text        NOT NULL,
    summary       text        NOT NULL,
    category      text        NOT NULL
                  CHECK (category IN ('integrated_engineering', 'awareness_training', 'exhibition_loan')),
    themes        text[]      NOT NULL DEFAULT '{}',
    provider_code text        NOT NULL REFERENCES provider (code),
    billed        boolean     NOT NULL,
    -- Flat price in euro cents, VAT excluded; 0 exactly when the offer is free.
    price_cents   bigint      NOT NULL CHECK (price_cents >= 0),
    version       integer     NOT NULL CHECK (version >= 1),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (billed = (price_cents > 0))
);
CREATE INDEX offer_by_category ON offer (category, code);
CREATE INDEX offer_by_provider ON offer (provider_code, code);
