-- ADR 0013: the member accepts the quote. A quote is proposed to the member, then accepted or refused by a
-- member admin, voided when the request is cancelled before its completion, or expired when nobody answered in
-- time: proposed → accepted | refused | voided | expired; accepted → voided. Quotes issued before were
-- proposals ('issued' on the wire stays QUOTE_STATUS_ISSUED).
ALTER TABLE quote DROP CONSTRAINT quote_status_check;
UPDATE quote SET status = 'proposed' WHERE status = 'issued';
ALTER TABLE quote
    ADD CONSTRAINT quote_status_check
        CHECK (status IN ('proposed', 'accepted', 'refused', 'voided', 'expired')),
    -- When the status last left 'proposed' (or an accepted quote was voided), and by whom (NULL: the system).
    ADD COLUMN decided_at            timestamptz,
    ADD COLUMN decided_by_user_id    uuid,
    ADD COLUMN decided_by_name       text NOT NULL DEFAULT '',
    -- Accepted: who signs for the member, and its purchase order number / numéro d'engagement ('' when none).
    ADD COLUMN signatory_name        text NOT NULL DEFAULT '',
    ADD COLUMN purchase_order_number text NOT NULL DEFAULT '',
    -- Refused: the member's reason; voided or expired: why.
    ADD COLUMN decision_reason       text NOT NULL DEFAULT '',
    -- A proposed quote expires at this instant (billing's sweeper marks it 'expired').
    ADD COLUMN expires_at            timestamptz;
UPDATE quote SET expires_at = issued_at + interval '30 days';
ALTER TABLE quote ALTER COLUMN expires_at SET NOT NULL;
-- A quote already invoiced was agreed in fact (the work was done and billed before members accepted quotes):
-- accepted when its invoice was issued, so that no invoice bills a quote that is not accepted.
UPDATE quote q SET status = 'accepted', decided_at = i.issued_at,
    signatory_name = 'not recorded (invoiced before quotes were accepted)'
  FROM invoice i WHERE i.referral_id = q.referral_id AND q.status = 'proposed';
ALTER TABLE quote ADD CONSTRAINT quote_decided_check CHECK ((status = 'proposed') = (decided_at IS NULL));
ALTER TABLE quote ADD CONSTRAINT quote_signed_check CHECK (status <> 'accepted' OR signatory_name <> '');
-- The sweeper's scan.
CREATE INDEX quote_proposed_by_expiry ON quote (expires_at, id) WHERE status = 'proposed';

-- The invoice bills an accepted quote: its number (EN 16931 BT-11, project reference) and the member's
-- purchase order number (BT-13). Invoices issued before have none.
ALTER TABLE invoice
    ADD COLUMN quote_id              uuid,
    ADD COLUMN quote_number          text NOT NULL DEFAULT '',
    ADD COLUMN purchase_order_number text NOT NULL DEFAULT '';
UPDATE invoice i SET quote_id = q.id, quote_number = q.number FROM quote q WHERE q.referral_id = i.referral_id;
CREATE UNIQUE INDEX invoice_by_quote ON invoice (quote_id) WHERE quote_id IS NOT NULL;

-- Requests billing saw cancelled (`id77.requests.request.cancelled`): a referral accepted for one of them and
-- delivered late gets no quote, so no proposed quote outlives its cancelled request.
CREATE TABLE cancelled_request (
    request_id   uuid        PRIMARY KEY,
    reason       text        NOT NULL,
    cancelled_at timestamptz NOT NULL
);
