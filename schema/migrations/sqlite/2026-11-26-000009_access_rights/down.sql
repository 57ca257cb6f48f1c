ALTER TABLE oidc_clients DROP COLUMN release_permissions;
DROP TABLE authz_state;
DROP TABLE authz_grants;
DROP TABLE authz_group_members;
DROP TABLE authz_groups;
DROP TABLE authz_role_permissions;
DROP TABLE authz_roles;
