ALTER TABLE authz_groups DROP COLUMN external_id;
DROP INDEX users_external_id;
ALTER TABLE users DROP COLUMN external_id;
