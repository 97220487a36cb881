-- Who did it, always (docs/adr/0013-one-truth-across-services.md): each history row keeps the actor's display
-- name when it acted (a person's name; "connecteur <provider>" for a provider's NATS consumer; empty for the
-- platform itself). Rows written before keep an empty name.
ALTER TABLE request_history ADD COLUMN actor_name text NOT NULL DEFAULT '';
