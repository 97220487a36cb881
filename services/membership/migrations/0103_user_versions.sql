-- Every account change that other services care about (identity, role, member/provider, active, removed) bumps
-- `version`; the transaction that made it publishes `user.changed` through the outbox for every row whose
-- `version` is ahead of `announced_version` (identity::announce_users), and start-up announces what is left
-- (accounts that existed before this migration, or a write path that forgot to announce).
ALTER TABLE app_user
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN announced_version bigint NOT NULL DEFAULT 0;

CREATE FUNCTION app_user_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.email IS DISTINCT FROM OLD.email
       OR NEW.display_name IS DISTINCT FROM OLD.display_name
       OR NEW.role IS DISTINCT FROM OLD.role
       OR NEW.member_id IS DISTINCT FROM OLD.member_id
       OR NEW.provider_code IS DISTINCT FROM OLD.provider_code
       OR NEW.active IS DISTINCT FROM OLD.active
       OR NEW.removed_at IS DISTINCT FROM OLD.removed_at THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER app_user_version BEFORE UPDATE ON app_user FOR EACH ROW EXECUTE FUNCTION app_user_bump_version();

CREATE INDEX app_user_unannounced ON app_user (id) WHERE version > announced_version;
