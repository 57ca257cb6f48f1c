-- Messaging: each resident's channel preferences, and the durable outbox (one row per message
-- and channel; retried with backoff until sent or out of attempts; a row being sent holds a lease
-- in next_attempt_at, so a crash mid-send makes it due again).
ALTER TABLE users ADD COLUMN message_channels TEXT NOT NULL DEFAULT 'email notice';

CREATE TABLE message_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    sender TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    recipient_sub TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    language TEXT NOT NULL,
    service TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    UNIQUE (sender, idempotency_key, channel)
);
CREATE INDEX message_outbox_due ON message_outbox(status, next_attempt_at);
