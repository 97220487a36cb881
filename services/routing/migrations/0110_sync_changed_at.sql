-- Sync of the lists (issue 20): when a referral last changed in this database, whatever changed it (a decision,
-- an agreement, an escalation, a progress report, a completion). `updated_at` stays the lifecycle's time (routing's
-- clock or the event's instant); `changed_at` is the instant of the write, set by the trigger below on every
-- UPDATE that changes the row, so that `updated_since` never misses a change.
ALTER TABLE referral ADD COLUMN changed_at timestamptz NOT NULL DEFAULT now();
UPDATE referral SET changed_at = updated_at;
CREATE INDEX referral_by_changed ON referral (changed_at, id);

CREATE FUNCTION touch_changed_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER referral_changed_at BEFORE UPDATE ON referral
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION touch_changed_at();
