-- An invoice's life after issue: sent to the buyer, then paid (docs: issued → sent → paid, or cancelled by a
-- credit note). The dates are the French calendar dates the coordinator or the provider reports.
ALTER TABLE invoice
    ADD COLUMN sent_on           date,
    ADD COLUMN paid_on           date,
    ADD COLUMN payment_reference text NOT NULL DEFAULT '';
