-- Access rights: permissions are `service:function` (`function` may be `*`), bundled into roles,
-- granted to one person or to a group, each grant with an optional validity period. Every change
-- bumps `authz_state.generation` in the same transaction, so every node's in-memory index knows
-- at its next check that it is stale. Which services' permissions an OIDC client receives as a
-- claim is the client's `release_permissions`.
CREATE TABLE authz_roles (
    name TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE authz_role_permissions (
    role TEXT NOT NULL REFERENCES authz_roles(name) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (role, permission)
);
CREATE TABLE authz_groups (
    name TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE authz_group_members (
    group_name TEXT NOT NULL REFERENCES authz_groups(name) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_name, user_id)
);
CREATE INDEX authz_group_members_user ON authz_group_members(user_id);
CREATE TABLE authz_grants (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    group_name TEXT REFERENCES authz_groups(name) ON DELETE CASCADE,
    role TEXT REFERENCES authz_roles(name) ON DELETE CASCADE,
    permission TEXT,
    valid_from TIMESTAMP,
    valid_until TIMESTAMP,
    granted_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    CHECK ((user_id IS NULL) <> (group_name IS NULL)),
    CHECK ((role IS NULL) <> (permission IS NULL))
);
CREATE INDEX authz_grants_user ON authz_grants(user_id);
CREATE INDEX authz_grants_group ON authz_grants(group_name);
CREATE TABLE authz_state (
    id INTEGER PRIMARY KEY NOT NULL,
    generation BIGINT NOT NULL
);
INSERT INTO authz_state (id, generation) VALUES (1, 0);
ALTER TABLE oidc_clients ADD COLUMN release_permissions TEXT;
