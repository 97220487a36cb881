-- Sync of the lists (issue 20): when a quote or an invoice last changed (a quote accepted, refused, voided or
-- expired; an invoice sent, paid or cancelled). Backfilled from the last known instant; afterwards set by the
-- trigger below on every UPDATE that changes the row (the instant of the write), so no path can forget it.
ALTER TABLE quote ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
UPDATE quote SET updated_at = GREATEST(issued_at, COALESCE(decided_at, issued_at));
CREATE INDEX quote_by_member_updated ON quote (member_id, updated_at);

ALTER TABLE invoice ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
UPDATE invoice i SET updated_at = GREATEST(i.issued_at, i.sent_on::timestamptz, i.paid_on::timestamptz,
    (SELECT max(c.issued_at) FROM credit_note c WHERE c.invoice_id = i.id));
CREATE INDEX invoice_by_member_updated ON invoice (member_id, updated_at);

CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER quote_updated_at BEFORE UPDATE ON quote
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER invoice_updated_at BEFORE UPDATE ON invoice
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION touch_updated_at();
