-- The offer's full price rule and VAT terms (OfferPublished carries them). Rows written before keep their
-- legacy meaning: a billed offer has a flat fee of price_cents, another one is free.
ALTER TABLE tariff
    ADD COLUMN price_kind         text    NOT NULL DEFAULT 'free'
        CHECK (price_kind IN ('free', 'flat', 'daily_rate', 'per_inhabitant', 'on_quote')),
    ADD COLUMN price_amount_cents bigint  NOT NULL DEFAULT 0 CHECK (price_amount_cents >= 0),
    ADD COLUMN price_days         integer NOT NULL DEFAULT 0 CHECK (price_days >= 0),
    ADD COLUMN price_floor_cents  bigint  NOT NULL DEFAULT 0 CHECK (price_floor_cents >= 0),
    ADD COLUMN price_cap_cents    bigint  NOT NULL DEFAULT 0 CHECK (price_cap_cents >= 0),
    -- Basis points; NULL when VAT does not apply (vat_note then says why).
    ADD COLUMN vat_rate_bp        integer CHECK (vat_rate_bp BETWEEN 0 AND 10000),
    ADD COLUMN vat_note           text    NOT NULL DEFAULT '';
UPDATE tariff SET price_kind = 'flat', price_amount_cents = price_cents WHERE billed;

-- Read model of the members' facts billing needs (population for per-inhabitant prices, SIREN of the buyer),
-- fed by `id77.membership.member.approved` and `.updated`; an older event does not overwrite a newer one, and
-- an update's empty or zero fact keeps the stored one.
CREATE TABLE member (
    member_id  uuid        PRIMARY KEY,
    siren      text        NOT NULL DEFAULT '',
    population bigint,
    as_of      timestamptz NOT NULL
);

-- A quote on an offer priced on quote has no amount yet: the provider states it.
ALTER TABLE quote
    ADD COLUMN amount_to_be_stated boolean NOT NULL DEFAULT false,
    ADD COLUMN vat_rate_bp         integer CHECK (vat_rate_bp BETWEEN 0 AND 10000),
    ADD COLUMN vat_note            text    NOT NULL DEFAULT '';
ALTER TABLE quote DROP CONSTRAINT quote_amount_cents_check;
ALTER TABLE quote ADD CONSTRAINT quote_amount_cents_check
    CHECK (amount_cents > 0 OR (amount_to_be_stated AND amount_cents = 0));
