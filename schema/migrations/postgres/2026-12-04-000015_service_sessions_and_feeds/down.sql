ALTER TABLE saml_sps DROP COLUMN left_aggregate_at;
DROP TABLE saml_participant_names;
DELETE FROM res_feeds WHERE kind <> 'facility';
ALTER TABLE res_feeds DROP CONSTRAINT res_feeds_kind_sub;
ALTER TABLE res_feeds ADD CONSTRAINT res_feeds_sub_key UNIQUE (sub);
ALTER TABLE res_feeds DROP COLUMN kind;
ALTER TABLE svc_sessions DROP COLUMN idp_checked_at, DROP COLUMN last_seen_at;
