-- The full catalogue: lifecycle, versions, eligibility, price rules, French search, members read model and
-- exhibition bookings. Extensions shipped with PostgreSQL's contrib (Debian's postgresql-15 has them); all
-- three are "trusted", so the database owner may create them.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- French with accents folded: "Réhabilitation" and "rehabilitation" are the same lexeme.
CREATE TEXT SEARCH CONFIGURATION id77_french (COPY = pg_catalog.french);
ALTER TEXT SEARCH CONFIGURATION id77_french
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, french_stem;

-- billed/price_cents stay as the consumers of OfferPublished know them: billed exactly when price_cents > 0
-- (unchanged check). The price rule below is the full truth.
ALTER TABLE offer
    ADD COLUMN description        text    NOT NULL DEFAULT '',
    ADD COLUMN duration           text    NOT NULL DEFAULT '',
    ADD COLUMN status             text    NOT NULL DEFAULT 'published'
               CHECK (status IN ('draft', 'published', 'archived')),
    ADD COLUMN eligible_kinds     text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN min_population     bigint  CHECK (min_population >= 0),
    ADD COLUMN max_population     bigint  CHECK (max_population >= 0),
    ADD COLUMN territory_epci     text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN territory_arrondissements text[] NOT NULL DEFAULT '{}',
    ADD COLUMN price_kind         text    NOT NULL DEFAULT 'free'
               CHECK (price_kind IN ('free', 'flat', 'daily_rate', 'per_inhabitant', 'on_quote')),
    ADD COLUMN price_amount_cents bigint  NOT NULL DEFAULT 0 CHECK (price_amount_cents >= 0),
    ADD COLUMN price_days         integer NOT NULL DEFAULT 0 CHECK (price_days >= 0),
    ADD COLUMN price_floor_cents  bigint  NOT NULL DEFAULT 0 CHECK (price_floor_cents >= 0),
    ADD COLUMN price_cap_cents    bigint  NOT NULL DEFAULT 0 CHECK (price_cap_cents >= 0),
    ADD COLUMN vat_rate_bp        integer CHECK (vat_rate_bp BETWEEN 0 AND 10000),
    ADD COLUMN vat_note           text    NOT NULL DEFAULT '',
    ADD COLUMN copies             integer NOT NULL DEFAULT 0 CHECK (copies BETWEEN 0 AND 100),
    -- 'seed' while only the seed wrote it; 'operator' once edited through the API (the seed then leaves it).
    ADD COLUMN managed_by         text    NOT NULL DEFAULT 'seed' CHECK (managed_by IN ('seed', 'operator'));
-- Offers written before price rules existed: a positive flat price, or free.
UPDATE offer SET price_kind = 'flat', price_amount_cents = price_cents WHERE price_cents > 0;

-- array_to_string is only STABLE (for arbitrary element types); on text[] it is immutable, which a generated
-- column needs.
CREATE FUNCTION id77_join_words(words text[]) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT array_to_string(words, ' ') $$;

-- What search reads: title (A), themes (A), summary (B), description (C), folded and stemmed.
ALTER TABLE offer ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('id77_french', title), 'A')
    || setweight(to_tsvector('id77_french', id77_join_words(themes)), 'A')
    || setweight(to_tsvector('id77_french', summary), 'B')
    || setweight(to_tsvector('id77_french', description), 'C')
) STORED;
CREATE INDEX offer_search ON offer USING gin (search);
CREATE INDEX offer_by_status ON offer (status, code);

-- Every version ever published (or edited as a draft), as the JSON of its content: a request keeps the
-- version it was made on, and GetOffer(version) shows it.
CREATE TABLE offer_version (
    offer_id    uuid        NOT NULL REFERENCES offer (id),
    version     integer     NOT NULL CHECK (version >= 1),
    content     jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (offer_id, version)
);

-- Words of the published offers, accent-folded, for typo correction with trigrams ("voiree" -> "voirie").
CREATE TABLE search_word (
    word text PRIMARY KEY
);
CREATE INDEX search_word_trgm ON search_word USING gin (word gin_trgm_ops);

-- Members as membership announces them, for "eligible for my collectivité".
CREATE TABLE member (
    member_id      uuid        PRIMARY KEY,
    kind           text        NOT NULL,
    population     bigint      NOT NULL DEFAULT 0,
    epci_siren     text        NOT NULL DEFAULT '',
    arrondissement text        NOT NULL DEFAULT '',
    status         text        NOT NULL,
    occurred_at    timestamptz NOT NULL
);

-- Physical copies of an exhibition (an offer of category exhibition_loan).
CREATE TABLE exhibition_copy (
    id       uuid    PRIMARY KEY,
    offer_id uuid    NOT NULL REFERENCES offer (id),
    number   integer NOT NULL CHECK (number >= 1),
    label    text    NOT NULL,
    UNIQUE (offer_id, number)
);

-- A copy held or lent for inclusive dates. The exclusion constraint is the guarantee: two live bookings of
-- one copy never overlap, whatever the concurrency.
CREATE TABLE booking (
    id           uuid        PRIMARY KEY,
    copy_id      uuid        NOT NULL REFERENCES exhibition_copy (id),
    offer_id     uuid        NOT NULL REFERENCES offer (id),
    member_id    uuid        NOT NULL,
    request_id   uuid,
    start_date   date        NOT NULL,
    end_date     date        NOT NULL CHECK (end_date >= start_date),
    period       daterange   GENERATED ALWAYS AS (daterange(start_date, end_date, '[]')) STORED,
    status       text        NOT NULL CHECK (status IN ('held', 'confirmed', 'released')),
    release_reason text      NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT booking_copy_not_lent_twice
        EXCLUDE USING gist (copy_id WITH =, period WITH &&) WHERE (status <> 'released')
);
CREATE INDEX booking_by_offer ON booking USING gist (offer_id, period);
CREATE INDEX booking_by_request ON booking (request_id) WHERE request_id IS NOT NULL;
