-- OIDC / OAuth 2 clients (relying parties). Secrets are high-entropy and stored as SHA-256.
CREATE TABLE oidc_clients (
    client_id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    secret_hash TEXT,
    public_client BOOLEAN NOT NULL DEFAULT FALSE,
    redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    allow_national_id BOOLEAN NOT NULL DEFAULT FALSE,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
