-- Member facts and member status arrive in different events (approved, updated) that may be applied out of
-- order: each keeps its own clock.
ALTER TABLE member ADD COLUMN status_at timestamptz NOT NULL DEFAULT '-infinity';
UPDATE member SET status_at = occurred_at;
