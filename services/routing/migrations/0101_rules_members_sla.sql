-- Routing rules, the member read model, re-routing and SLA timers (issue 6).

-- Providers routing knows (from the catalogue's offers), with their response deadline in business days.
CREATE TABLE provider (
    code              text        PRIMARY KEY,
    name              text        NOT NULL DEFAULT '',
    sla_business_days integer     NOT NULL DEFAULT 5 CHECK (sla_business_days BETWEEN 1 AND 60),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
INSERT INTO provider (code) SELECT DISTINCT provider_code FROM offer ON CONFLICT DO NOTHING;

-- The offer's themes (rules can match on them).
ALTER TABLE offer ADD COLUMN themes text[] NOT NULL DEFAULT '{}';

-- Read model of membership's members: what rules see of a member, and who its referent is.
CREATE TABLE member (
    member_id        uuid        PRIMARY KEY,
    siren            text        NOT NULL DEFAULT '',
    kind             text        NOT NULL DEFAULT '',
    population       bigint      NOT NULL DEFAULT 0,
    insee_code       text        NOT NULL DEFAULT '',
    epci_siren       text        NOT NULL DEFAULT '',
    arrondissement   text        NOT NULL DEFAULT '',
    referent_user_id uuid,
    updated_at       timestamptz NOT NULL
);

-- Every version of the ordered rule set (JSON array of rules). The current one is the highest version; a
-- referral records the version it was routed with, so an old routing stays explainable.
CREATE TABLE rule_set (
    version    integer     PRIMARY KEY CHECK (version > 0),
    rules      jsonb       NOT NULL,
    created_by uuid,
    created_at timestamptz NOT NULL
);

-- What routing keeps of each request, to offer it again to the next provider.
CREATE TABLE routed_request (
    request_id  uuid        PRIMARY KEY,
    member_id   uuid        NOT NULL,
    offer_id    uuid        NOT NULL,
    subject     text        NOT NULL,
    description text        NOT NULL,
    received_at timestamptz NOT NULL
);
INSERT INTO routed_request (request_id, member_id, offer_id, subject, description, received_at)
SELECT request_id, member_id, offer_id, '', '', offered_at FROM referral ON CONFLICT DO NOTHING;

-- A request now has one referral per attempt (re-routing), at most one of them open.
ALTER TABLE referral DROP CONSTRAINT referral_request_id_key;
ALTER TABLE referral
    ADD COLUMN attempt      integer NOT NULL DEFAULT 1,
    ADD COLUMN rule_id      uuid,
    ADD COLUMN rule_version integer,
    ADD COLUMN respond_by   timestamptz,
    ADD COLUMN remind_at    timestamptz,
    ADD COLUMN escalated_at timestamptz,
    ADD COLUMN expires_at   timestamptz,
    ADD COLUMN completed_at timestamptz,
    ADD COLUMN progress     text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX referral_by_attempt ON referral (request_id, attempt);
CREATE UNIQUE INDEX referral_one_open ON referral (request_id) WHERE status IN ('offered', 'accepted');
CREATE INDEX referral_at_risk ON referral (remind_at, id) WHERE status = 'offered';

-- Requests the coordinator must place by hand: open requests, and those no candidate was left for.
ALTER TABLE triage
    ADD COLUMN offer_id    uuid,
    ADD COLUMN reason      text NOT NULL DEFAULT '',
    ADD COLUMN resolved_at timestamptz;

-- Durable SLA timers, scanned by a background task (FOR UPDATE SKIP LOCKED, so replicas share them).
CREATE TABLE timer (
    id          uuid        PRIMARY KEY,
    referral_id uuid        NOT NULL REFERENCES referral (id),
    kind        text        NOT NULL CHECK (kind IN ('remind', 'escalate', 'expire')),
    due_at      timestamptz NOT NULL,
    UNIQUE (referral_id, kind)
);
CREATE INDEX timer_by_due ON timer (due_at, id);

-- Progress a provider reported on an accepted referral.
CREATE TABLE referral_progress (
    referral_id uuid        NOT NULL REFERENCES referral (id),
    sequence    integer     NOT NULL,
    note        text        NOT NULL,
    percent     integer     NOT NULL DEFAULT 0,
    reported_at timestamptz NOT NULL,
    PRIMARY KEY (referral_id, sequence)
);
