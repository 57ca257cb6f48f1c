-- GDPR erasure: a resident's request closes the account at once; after the retention period the
-- personal data is overwritten (the row and its id stay, so the audit log keeps its references).
ALTER TABLE users ADD COLUMN erasure_requested_at TIMESTAMP;
ALTER TABLE users ADD COLUMN erased_at TIMESTAMP;
CREATE INDEX users_erasure ON users(erasure_requested_at);
