-- Read model of who follows each member, fed by `id77.membership.member.updated`: a referent sees the requests
-- of the members it follows. No row (or a NULL referent) means nobody follows the member.
CREATE TABLE member_referent (
    member_id        uuid        PRIMARY KEY,
    referent_user_id uuid,
    -- Time of the event that set it; an older event does not overwrite a newer one.
    as_of            timestamptz NOT NULL
);
CREATE INDEX member_referent_by_referent ON member_referent (referent_user_id);
