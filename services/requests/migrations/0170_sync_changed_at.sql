-- Sync of the lists (issue 20): when a request last changed in this database, whatever changed it (a step, an
-- attached offer, a first answer, a feedback). `updated_at` stays the lifecycle's time (the event's instant, which
-- may be earlier than when requests recorded it); `changed_at` is the instant of the write, set by the trigger
-- below on every UPDATE that changes the row, so that `updated_since` never misses a change.
ALTER TABLE request ADD COLUMN changed_at timestamptz NOT NULL DEFAULT now();
UPDATE request SET changed_at = updated_at;
CREATE INDEX request_by_member_changed ON request (member_id, changed_at);

CREATE FUNCTION touch_changed_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER request_changed_at BEFORE UPDATE ON request
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION touch_changed_at();

-- A feedback is part of the request it rates: giving or revising one changes the request.
CREATE FUNCTION touch_request_of_feedback() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE request SET changed_at = now() WHERE id = NEW.request_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER feedback_changes_request AFTER INSERT OR UPDATE ON feedback
    FOR EACH ROW EXECUTE FUNCTION touch_request_of_feedback();
