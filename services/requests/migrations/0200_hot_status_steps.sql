-- A status step rewrites its request row. With `changed_at` (rewritten on every update, by its trigger) in an
-- index, no step could be a heap-only update: each wrote a new entry into every index of `request` (issue 23).
-- The lists' sync filters on `changed_at` after its scope's own index (a member's requests, a provider's), which
-- finds the few rows of a scope as well. Pages keep room for a row's next versions (heap-only updates need it).
DROP INDEX IF EXISTS request_by_member_changed;
ALTER TABLE request SET (fillfactor = 85);
