-- Read model of the catalogue's offers, fed by `id77.catalogue.offer.published`. Only what routing needs.
CREATE TABLE offer (
    offer_id      uuid        PRIMARY KEY,
    code          text        NOT NULL,
    title         text        NOT NULL,
    provider_code text        NOT NULL,
    -- Catalogue's version; an older version arriving late is ignored.
    version       integer     NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One hand-off of a request to one provider.
CREATE TABLE referral (
    id            uuid        PRIMARY KEY,
    -- Unique: replaying a request (any message id, any time) never makes a second referral.
    request_id    uuid        NOT NULL UNIQUE,
    offer_id      uuid        NOT NULL,
    member_id     uuid        NOT NULL,
    provider_code text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('offered', 'accepted', 'declined', 'expired', 'withdrawn')),
    -- Why the provider declined (empty otherwise).
    reason        text        NOT NULL DEFAULT '',
    -- How the provider was chosen, e.g. "auto: provider of offer caue-conseil".
    assignment    text        NOT NULL,
    offered_at    timestamptz NOT NULL,
    decided_at    timestamptz,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX referral_by_offered_at ON referral (offered_at, id);
CREATE INDEX referral_by_provider ON referral (provider_code, offered_at, id);

-- Open ("orientation") requests without an offer: the coordinator triages them by hand.
CREATE TABLE triage (
    request_id  uuid        PRIMARY KEY,
    member_id   uuid        NOT NULL,
    subject     text        NOT NULL,
    description text        NOT NULL,
    received_at timestamptz NOT NULL
);
