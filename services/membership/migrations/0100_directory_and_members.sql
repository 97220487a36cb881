-- The directory of collectivités of the département, imported from INSEE-derived open data.
CREATE TABLE collectivity (
    siren        char(9)     PRIMARY KEY,
    name         text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('commune', 'epci', 'syndicat')),
    insee_code   text,
    departement  text        NOT NULL,
    population   bigint      NOT NULL DEFAULT 0,
    postal_codes text[]      NOT NULL DEFAULT '{}',
    epci_siren   char(9),
    legal_form   text,
    -- Lowercase, accents folded, for search.
    search_name  text        NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX collectivity_by_search_name ON collectivity (search_name, siren);
CREATE INDEX collectivity_by_insee ON collectivity (insee_code);

-- A collectivité that applied to ID 77. One row per collectivité.
CREATE TABLE member (
    id            uuid        PRIMARY KEY,
    siren         char(9)     NOT NULL UNIQUE REFERENCES collectivity (siren),
    name          text        NOT NULL,
    kind          text        NOT NULL,
    population    bigint      NOT NULL DEFAULT 0,
    status        text        NOT NULL CHECK (status IN ('pending', 'active', 'suspended', 'withdrawn')),
    contact_name  text        NOT NULL,
    contact_email text        NOT NULL,
    applied_at    timestamptz NOT NULL,
    approved_at   timestamptz,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX member_by_status ON member (status, applied_at, id);
