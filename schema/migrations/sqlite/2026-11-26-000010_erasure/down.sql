DROP INDEX users_erasure;
ALTER TABLE users DROP COLUMN erased_at;
ALTER TABLE users DROP COLUMN erasure_requested_at;
