-- The authorization-code flow: client settings it needs, pending authorization requests (also
-- PAR), grants (one per authorization, the family of its codes, access and refresh tokens),
-- codes and refresh tokens (stored as SHA-256), remembered consent, revoked access tokens and
-- used client-assertion ids.
ALTER TABLE oidc_clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE oidc_clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE oidc_clients ADD COLUMN subject_type TEXT NOT NULL DEFAULT 'public';
ALTER TABLE oidc_clients ADD COLUMN sector_identifier TEXT;
ALTER TABLE oidc_clients ADD COLUMN jwks TEXT;
ALTER TABLE oidc_clients ADD COLUMN require_consent BOOLEAN NOT NULL DEFAULT 1;
ALTER TABLE oidc_clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256';
ALTER TABLE oidc_clients ADD COLUMN registration_token_hash TEXT;

CREATE TABLE oidc_auth_requests (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES oidc_clients(client_id) ON DELETE CASCADE,
    params TEXT NOT NULL,
    pushed BOOLEAN NOT NULL DEFAULT 0,
    session_id TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX oidc_auth_requests_expires ON oidc_auth_requests(expires_at);

CREATE TABLE oidc_grants (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES oidc_clients(client_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_id TEXT,
    scope TEXT NOT NULL,
    nonce TEXT,
    acr TEXT NOT NULL,
    auth_time TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX oidc_grants_session ON oidc_grants(session_id);
CREATE INDEX oidc_grants_user ON oidc_grants(user_id);

CREATE TABLE oidc_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES oidc_grants(id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);

CREATE TABLE oidc_refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES oidc_grants(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX oidc_refresh_tokens_grant ON oidc_refresh_tokens(grant_id);

CREATE TABLE oidc_consents (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES oidc_clients(client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    granted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE oidc_revoked_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

CREATE TABLE oidc_used_assertions (
    jti TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
