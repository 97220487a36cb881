-- The request lifecycle (docs/adr/0010-request-lifecycle.md): triage, in_progress and closed statuses; open
-- orientation requests (no offer); the offer's version and category; what each category needs (dates, site);
-- who made each change; feedback; the member's territory for statistics.

ALTER TABLE request DROP CONSTRAINT request_status_check;
ALTER TABLE request ADD CONSTRAINT request_status_check CHECK (status IN
    ('submitted', 'triage', 'referred', 'accepted', 'in_progress', 'completed', 'declined', 'cancelled', 'closed'));
-- NULL: an open orientation request, until the coordinator attaches an offer.
ALTER TABLE request ALTER COLUMN offer_id DROP NOT NULL;
ALTER TABLE request
    ADD COLUMN offer_version           integer,
    ADD COLUMN offer_category          text,
    ADD COLUMN orientation             boolean     NOT NULL DEFAULT false,
    -- Loan dates, site (domain::Details).
    ADD COLUMN details                 jsonb       NOT NULL DEFAULT '{}',
    -- SHA-256 of the submitted body: the same Idempotency-Key with another body is a conflict.
    ADD COLUMN idempotency_fingerprint text,
    ADD COLUMN first_answered_at       timestamptz,
    ADD COLUMN completed_at            timestamptz;
CREATE INDEX request_by_submitted ON request (submitted_at, id);
CREATE INDEX request_by_provider ON request (provider_code, submitted_at, id);

ALTER TABLE request_history
    ADD COLUMN from_status   text,
    -- NULL with role 'system': routing's events.
    ADD COLUMN actor_user_id uuid,
    ADD COLUMN actor_role    text NOT NULL DEFAULT 'system',
    ADD COLUMN provider_code text;

-- The offer read model keeps the category (what a request for it must carry).
ALTER TABLE offer ADD COLUMN category text NOT NULL DEFAULT '';

-- Where each member is (from member.approved / member.updated), for the site's default and the statistics.
CREATE TABLE member_territory (
    member_id      uuid        PRIMARY KEY,
    kind           text        NOT NULL DEFAULT '',
    insee_code     text        NOT NULL DEFAULT '',
    epci_siren     text        NOT NULL DEFAULT '',
    arrondissement text        NOT NULL DEFAULT '',
    as_of          timestamptz NOT NULL
);

-- A member's rating of a completed request: one per request, revisable until the request is closed.
CREATE TABLE feedback (
    request_id uuid        PRIMARY KEY REFERENCES request (id),
    rating     smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment    text        NOT NULL DEFAULT '',
    given_by   uuid        NOT NULL,
    given_at   timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
