-- The conversation on a request: messages, attachments stored in chunks, per-user read markers.
CREATE TABLE message (
    id             uuid        PRIMARY KEY,
    request_id     uuid        NOT NULL REFERENCES request (id),
    -- Total order of a thread, also the read markers' unit.
    seq            bigserial   NOT NULL UNIQUE,
    author_user_id uuid        NOT NULL,
    author_role    text        NOT NULL,
    author_name    text        NOT NULL,
    body           text        NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX message_by_request ON message (request_id, seq);

-- One attachment per message. Its bytes live in attachment_chunk, never on a pod's disk. A row exists only
-- once the whole upload was accepted: the upload writes message, attachment and chunks in one transaction.
CREATE TABLE attachment (
    id           uuid        PRIMARY KEY,
    -- Deferred: the upload stores the content first and inserts the message last, so that its seq is taken at
    -- the end of a long upload, not the start.
    message_id   uuid        NOT NULL REFERENCES message (id) DEFERRABLE INITIALLY DEFERRED,
    request_id   uuid        NOT NULL REFERENCES request (id),
    filename     text        NOT NULL,
    content_type text        NOT NULL,
    size_bytes   bigint      NOT NULL CHECK (size_bytes >= 0),
    sha256       text        NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX attachment_by_message ON attachment (message_id);

-- The content, in chunks of at most 256 KiB, numbered from 0.
CREATE TABLE attachment_chunk (
    attachment_id uuid    NOT NULL REFERENCES attachment (id),
    seq           integer NOT NULL,
    data          bytea   NOT NULL,
    PRIMARY KEY (attachment_id, seq)
);

-- How far each user has read each thread (a message seq; 0 = nothing).
CREATE TABLE message_read (
    request_id uuid   NOT NULL REFERENCES request (id),
    user_id    uuid   NOT NULL,
    read_seq   bigint NOT NULL,
    PRIMARY KEY (request_id, user_id)
);
