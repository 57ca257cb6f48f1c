ALTER TABLE saml_sps DROP COLUMN left_aggregate_at;
DROP TABLE saml_participant_names;
CREATE TABLE res_feeds_one (
    token_hash TEXT PRIMARY KEY NOT NULL,
    sub TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO res_feeds_one (token_hash, sub, created_at)
    SELECT token_hash, sub, created_at FROM res_feeds WHERE kind = 'facility';
DROP TABLE res_feeds;
ALTER TABLE res_feeds_one RENAME TO res_feeds;
ALTER TABLE svc_sessions DROP COLUMN idp_checked_at;
ALTER TABLE svc_sessions DROP COLUMN last_seen_at;
