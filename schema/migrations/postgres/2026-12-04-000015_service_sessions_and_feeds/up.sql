-- Built-in services keep the IdP's idle limit: when the session was last used, and when the IdP
-- last confirmed (silent authentication) that its own session is still alive.
ALTER TABLE svc_sessions ADD COLUMN last_seen_at TIMESTAMP, ADD COLUMN idp_checked_at TIMESTAMP;

-- Calendar feeds are per booking service (facility reservations, appointments): one resident
-- has one feed in each. Feeds made before this belonged to neither; they stay with facilities.
ALTER TABLE res_feeds ADD COLUMN kind TEXT NOT NULL DEFAULT 'facility';
ALTER TABLE res_feeds ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE res_feeds DROP CONSTRAINT res_feeds_sub_key;
ALTER TABLE res_feeds ADD CONSTRAINT res_feeds_kind_sub UNIQUE (kind, sub);
