-- In-portal notifications (issue 21): every queued mail is also a notification its recipient reads in the portal.
-- Notices about something other than a request (a membership application) have no request.
ALTER TABLE mail_outbox ALTER COLUMN request_id DROP NOT NULL;
ALTER TABLE mail_outbox ADD COLUMN read_at timestamptz;
CREATE INDEX mail_outbox_recipient ON mail_outbox (recipient_user_id, created_at DESC, id DESC);
CREATE INDEX mail_outbox_unread ON mail_outbox (recipient_user_id) WHERE read_at IS NULL;
