-- ADR 0013. Whether the provider may work on an accepted referral: a billed offer waits for the member's
-- agreement to its quote (billing's `quote.accepted`). Referrals accepted before this column existed are
-- 'not_required', so that nothing in flight gets stuck behind a quote nobody will be asked to accept.
ALTER TABLE referral
    ADD COLUMN agreement text NOT NULL DEFAULT 'not_required'
        CHECK (agreement IN ('not_required', 'awaiting_member', 'agreed'));

-- Who accepted, declined or withdrew it: a user (NULL for routing itself or a provider's NATS consumer), the
-- role it acted in ('coordinator', 'provider_agent', 'provider_consumer', 'system'...) and its display name.
ALTER TABLE referral
    ADD COLUMN decided_by_user_id uuid,
    ADD COLUMN decided_by_role    text NOT NULL DEFAULT '',
    ADD COLUMN decided_by_name    text NOT NULL DEFAULT '';
