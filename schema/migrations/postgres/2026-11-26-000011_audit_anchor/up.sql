-- Audit retention: rows older than the retention period are exported and deleted; the chain then
-- starts from this anchor (the sequence number and hash of the last deleted row), which is itself
-- recorded in the chain by an `audit.pruned` event.
CREATE TABLE audit_anchor (
    id INTEGER PRIMARY KEY NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_anchor (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
