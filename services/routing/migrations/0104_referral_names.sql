-- What a referral's screens name (issue 21): the collectivité's name (membership's member.approved), and who
-- submitted the request, with its e-mail address (requests' request.submitted). Empty for members approved and
-- requests submitted before routing kept them.
ALTER TABLE member ADD COLUMN name text NOT NULL DEFAULT '';

CREATE TABLE request_contact (
    request_id        uuid        PRIMARY KEY,
    requester_user_id uuid,
    requester_name    text        NOT NULL DEFAULT '',
    requester_email   text        NOT NULL DEFAULT '',
    received_at       timestamptz NOT NULL
);
