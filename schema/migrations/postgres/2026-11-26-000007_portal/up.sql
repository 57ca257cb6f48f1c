-- Built-in services as OIDC relying parties (the service kit): their own sessions (a pending
-- login lives in a signed cookie of the browser that started it). The personal notice board. Residents are referenced by their subject identifier only.
CREATE TABLE svc_sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    service TEXT NOT NULL,
    sub TEXT NOT NULL,
    name TEXT NOT NULL,
    idp_sid TEXT,
    id_token TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX svc_sessions_sid ON svc_sessions(service, idp_sid);

CREATE TABLE notices (
    id TEXT PRIMARY KEY NOT NULL,
    sub TEXT NOT NULL,
    poster TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    service TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT,
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    read_at TIMESTAMP,
    archived_at TIMESTAMP,
    UNIQUE (poster, idempotency_key)
);
CREATE INDEX notices_sub ON notices(sub, created_at);
