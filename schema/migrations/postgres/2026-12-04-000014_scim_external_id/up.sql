-- SCIM externalId (RFC 7643 §3.1): the provisioning client's own identifier for a person or a
-- group, stored as given and returned with the resource. Not unique (each client has its own).
ALTER TABLE users ADD COLUMN external_id TEXT;
CREATE INDEX users_external_id ON users(external_id);
ALTER TABLE authz_groups ADD COLUMN external_id TEXT;
