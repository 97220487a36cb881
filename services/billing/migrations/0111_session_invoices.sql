-- Invoices of held training sessions (issue 22, ADR 0016): one per session and member with attendees, billed per
-- participant, in the same table, numbering and exports as the invoices of completed requests. Such an invoice
-- bills no request, referral or quote, so the source becomes explicit: `source_kind` 'request' (request_id and
-- referral_id set, as every row so far) or 'session' (session_id set). A redelivered `session.held` cannot bill a
-- member twice: UNIQUE (session_id, member_id) (rows of requests have no session_id, NULLs never collide).
ALTER TABLE invoice
    ADD COLUMN source_kind text NOT NULL DEFAULT 'request' CHECK (source_kind IN ('request', 'session')),
    ADD COLUMN session_id  uuid,
    ALTER COLUMN request_id DROP NOT NULL,
    ALTER COLUMN referral_id DROP NOT NULL,
    ADD CONSTRAINT invoice_source CHECK (
        (source_kind = 'request' AND request_id IS NOT NULL AND referral_id IS NOT NULL AND session_id IS NULL)
        OR (source_kind = 'session' AND session_id IS NOT NULL AND request_id IS NULL AND referral_id IS NULL)),
    ADD CONSTRAINT invoice_one_per_session_and_member UNIQUE (session_id, member_id);
-- Existing rows took 'request'; a new row states its source.
ALTER TABLE invoice ALTER COLUMN source_kind DROP DEFAULT;
