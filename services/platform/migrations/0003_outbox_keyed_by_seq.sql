-- Issue 23: the outbox is keyed by `seq`, the order the relay reads and marks it in. The uuid `id` stays (it is
-- the message id, `Nats-Msg-Id`, made unique where it is generated: a v7 uuid) but loses its index, which no
-- statement read: it cost an index entry on every insert and on every `published_at` mark.
ALTER TABLE outbox DROP CONSTRAINT outbox_pkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_seq_key;
ALTER TABLE outbox ADD CONSTRAINT outbox_pkey PRIMARY KEY (seq);
