-- Read model of the catalogue's providers (name and kind), fed by the provider carried by `offer.published`:
-- the trading name of the documents a provider issues, and whether the Département's identity is its own.
CREATE TABLE provider (
    code       text        PRIMARY KEY,
    name       text        NOT NULL,
    kind       text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The member's name (from `member.approved`), for the buyer of its documents.
ALTER TABLE member ADD COLUMN name text NOT NULL DEFAULT '';

-- The seller's and the buyer's identities, fixed when the document is issued (domain `Party`, as JSON).
-- Documents issued before carry empty parties.
ALTER TABLE quote
    ADD COLUMN seller jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN buyer  jsonb NOT NULL DEFAULT '{}';
ALTER TABLE invoice
    ADD COLUMN seller jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN buyer  jsonb NOT NULL DEFAULT '{}';
