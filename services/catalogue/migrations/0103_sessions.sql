-- Training and awareness sessions (issue 22, ADR 0016): dated sessions of an awareness/training offer, their
-- registrations with a waiting list, attendance, ratings and calendar feeds. Capacity and the per-member quota
-- are enforced here, under a lock on the session row, never by a read-then-write in the service.

-- The collectivité's name, for registrations (membership's applied/approved events carry it).
ALTER TABLE member ADD COLUMN name text NOT NULL DEFAULT '';

CREATE TABLE session (
    id                          uuid        PRIMARY KEY,
    offer_id                    uuid        NOT NULL REFERENCES offer (id),
    provider_code               text        NOT NULL REFERENCES provider (code),
    starts_at                   timestamptz NOT NULL,
    ends_at                     timestamptz NOT NULL,
    online                      boolean     NOT NULL,
    commune_insee               text        NOT NULL DEFAULT '' CHECK (commune_insee = '' OR commune_insee ~ '^77[0-9]{3}$'),
    commune_name                text        NOT NULL DEFAULT '',
    address                     text        NOT NULL DEFAULT '',
    online_link                 text        NOT NULL DEFAULT '',
    capacity                    integer     NOT NULL CHECK (capacity > 0),
    member_quota                integer     NOT NULL DEFAULT 0 CHECK (member_quota >= 0),
    registration_deadline       timestamptz NOT NULL,
    price_per_participant_cents bigint      NOT NULL DEFAULT 0 CHECK (price_per_participant_cents >= 0),
    details                     text        NOT NULL DEFAULT '',
    status                      text        NOT NULL DEFAULT 'scheduled'
                                CHECK (status IN ('scheduled', 'cancelled', 'held')),
    cancel_reason               text        NOT NULL DEFAULT '',
    -- The reminder timer: due at remind_at, fired once (reminded_at).
    remind_at                   timestamptz,
    reminded_at                 timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at),
    CHECK (registration_deadline <= starts_at),
    CHECK (online OR (commune_insee <> '' AND address <> '')),
    CHECK (NOT online OR online_link <> '')
);
CREATE INDEX session_by_offer ON session (offer_id, starts_at, id);
CREATE INDEX session_by_start ON session (starts_at, id);
CREATE INDEX session_by_provider ON session (provider_code, starts_at, id);
CREATE INDEX session_reminders_due ON session (remind_at) WHERE status = 'scheduled' AND reminded_at IS NULL;

-- Arrival order of registrations, drawn under the session's lock (so confirmed/waitlisted follow it exactly).
CREATE SEQUENCE registration_arrival;

CREATE TABLE registration (
    id                   uuid        PRIMARY KEY,
    session_id           uuid        NOT NULL REFERENCES session (id),
    member_id            uuid        NOT NULL,
    participant_name     text        NOT NULL CHECK (participant_name <> ''),
    participant_function text        NOT NULL DEFAULT '',
    participant_email    text        NOT NULL CHECK (participant_email <> ''),
    -- Set by the admission trigger, whatever the insert says.
    status               text        NOT NULL DEFAULT 'waitlisted'
                         CHECK (status IN ('confirmed', 'waitlisted', 'cancelled')),
    arrival              bigint      NOT NULL DEFAULT 0,
    attended             boolean     NOT NULL DEFAULT false,
    registered_by        uuid        NOT NULL,
    registered_at        timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    cancel_reason        text        NOT NULL DEFAULT ''
);
-- One active registration per participant's e-mail and member for a session (Register is idempotent on it).
CREATE UNIQUE INDEX registration_once_per_email
    ON registration (session_id, member_id, lower(participant_email)) WHERE status <> 'cancelled';
CREATE INDEX registration_by_session ON registration (session_id, status, arrival);
CREATE INDEX registration_by_member ON registration (member_id, registered_at, id);

-- Admission: locks the session row, refuses a closed session or a full quota, confirms while seats are left,
-- else waitlists. SQLSTATEs: P7701 quota reached, P7702 registration closed (deadline), P7703 not scheduled.
CREATE FUNCTION registration_admit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s session%ROWTYPE;
    held integer;
    taken integer;
BEGIN
    SELECT * INTO s FROM session WHERE id = NEW.session_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'session % not found', NEW.session_id USING ERRCODE = 'P7704';
    END IF;
    IF s.status <> 'scheduled' THEN
        RAISE EXCEPTION 'session % is %', s.id, s.status USING ERRCODE = 'P7703';
    END IF;
    IF clock_timestamp() > s.registration_deadline THEN
        RAISE EXCEPTION 'registration to session % closed at %', s.id, s.registration_deadline
            USING ERRCODE = 'P7702';
    END IF;
    IF s.member_quota > 0 THEN
        SELECT count(*) INTO held FROM registration
            WHERE session_id = s.id AND member_id = NEW.member_id AND status <> 'cancelled';
        IF held >= s.member_quota THEN
            RAISE EXCEPTION 'member % holds % of % registrations', NEW.member_id, held, s.member_quota
                USING ERRCODE = 'P7701';
        END IF;
    END IF;
    SELECT count(*) INTO taken FROM registration WHERE session_id = s.id AND status = 'confirmed';
    NEW.status := CASE WHEN taken < s.capacity THEN 'confirmed' ELSE 'waitlisted' END;
    NEW.arrival := nextval('registration_arrival');
    RETURN NEW;
END $$;
CREATE TRIGGER registration_admit BEFORE INSERT ON registration
    FOR EACH ROW EXECUTE FUNCTION registration_admit();

-- A freed seat: under the session's lock, the first waitlisted by arrival becomes confirmed. Returns its id,
-- or NULL (no seat free, nobody waiting, session not scheduled).
CREATE FUNCTION registration_promote(p_session uuid) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    s session%ROWTYPE;
    taken integer;
    promoted uuid;
BEGIN
    SELECT * INTO s FROM session WHERE id = p_session FOR UPDATE;
    IF NOT FOUND OR s.status <> 'scheduled' THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO taken FROM registration WHERE session_id = s.id AND status = 'confirmed';
    IF taken >= s.capacity THEN
        RETURN NULL;
    END IF;
    UPDATE registration SET status = 'confirmed', updated_at = now()
        WHERE id = (SELECT id FROM registration WHERE session_id = s.id AND status = 'waitlisted'
                    ORDER BY arrival LIMIT 1 FOR UPDATE)
        RETURNING id INTO promoted;
    RETURN promoted;
END $$;

-- Backstop, checked at commit: never more confirmed than seats (P7709).
CREATE FUNCTION registration_capacity_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    seats integer;
    taken integer;
BEGIN
    SELECT capacity INTO seats FROM session WHERE id = NEW.session_id;
    SELECT count(*) INTO taken FROM registration WHERE session_id = NEW.session_id AND status = 'confirmed';
    IF taken > seats THEN
        RAISE EXCEPTION 'session % has % confirmed for % seats', NEW.session_id, taken, seats
            USING ERRCODE = 'P7709';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER registration_capacity AFTER INSERT OR UPDATE OF status ON registration
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status = 'confirmed')
    EXECUTE FUNCTION registration_capacity_check();

-- Capacity may only grow.
CREATE FUNCTION session_capacity_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.capacity < OLD.capacity THEN
        RAISE EXCEPTION 'session % capacity cannot shrink', NEW.id USING ERRCODE = 'P7709';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER session_capacity_grows BEFORE UPDATE OF capacity ON session
    FOR EACH ROW EXECUTE FUNCTION session_capacity_grows();

CREATE TABLE session_rating (
    session_id uuid        NOT NULL REFERENCES session (id),
    member_id  uuid        NOT NULL,
    score      integer     NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment    text        NOT NULL DEFAULT '',
    rated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, member_id)
);

-- One calendar feed per user: only the SHA-256 of its secret token is kept.
CREATE TABLE calendar_feed (
    user_id       uuid        PRIMARY KEY,
    token_hash    bytea       NOT NULL UNIQUE,
    member_id     uuid,
    provider_code text,
    issued_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
