-- Providers by name (issue 21): the name the catalogue gives each provider, from `offer.published`'s `provider`,
-- so that the mails, notifications and history lines requests writes name the provider, never its code. Empty
-- until an offer of that provider is published again (the texts then say « le partenaire »).
CREATE TABLE provider (
    code       text        PRIMARY KEY,
    name       text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO provider (code) SELECT DISTINCT provider_code FROM offer WHERE provider_code <> '' ON CONFLICT DO NOTHING;
