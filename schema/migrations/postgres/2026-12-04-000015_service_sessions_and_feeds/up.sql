-- Built-in services keep the IdP's idle limit: when the session was last used, and when the IdP
-- last confirmed (silent authentication) that its own session is still alive.
ALTER TABLE svc_sessions ADD COLUMN last_seen_at TIMESTAMP, ADD COLUMN idp_checked_at TIMESTAMP;

-- Calendar feeds are per booking service (facility reservations, appointments): one resident
-- has one feed in each. Feeds made before this belonged to neither; they stay with facilities.
ALTER TABLE res_feeds ADD COLUMN kind TEXT NOT NULL DEFAULT 'facility';
ALTER TABLE res_feeds ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE res_feeds DROP CONSTRAINT res_feeds_sub_key;
ALTER TABLE res_feeds ADD CONSTRAINT res_feeds_kind_sub UNIQUE (kind, sub);

-- Every NameID issued to an SP in a session (a later IdP-initiated login issues a new transient
-- one); a LogoutRequest naming any of them, with the session's SessionIndex, ends the session.
CREATE TABLE saml_participant_names (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    sp_entity_id TEXT NOT NULL,
    name_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (sp_entity_id, name_id, session_id)
);
CREATE INDEX saml_participant_names_session ON saml_participant_names(session_id);
INSERT INTO saml_participant_names (session_id, sp_entity_id, name_id, created_at)
    SELECT session_id, sp_entity_id, name_id, created_at FROM saml_participants;

-- An SP disabled because it left its aggregate (not by an operator) is enabled again when it
-- comes back.
ALTER TABLE saml_sps ADD COLUMN left_aggregate_at TIMESTAMP;
