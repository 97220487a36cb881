-- W3C trace context (`traceparent`) of the span that wrote the event: the relay sends it as the NATS message's
-- `traceparent` header, so the consumers continue the trace. Null when no trace was recorded.
ALTER TABLE outbox ADD COLUMN trace_context text;
