-- Customer register, SSO sessions, login throttling and the hash-chained audit log.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    role TEXT NOT NULL DEFAULT 'resident',
    disabled BOOLEAN NOT NULL DEFAULT 0,
    given_name TEXT,
    family_name TEXT,
    email TEXT,
    phone TEXT,
    street_address TEXT,
    postal_code TEXT,
    locality TEXT,
    country TEXT,
    home_municipality TEXT,
    preferred_language TEXT NOT NULL DEFAULT 'fi',
    national_id_enc TEXT,
    national_id_index TEXT UNIQUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    acr TEXT NOT NULL,
    auth_time TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user_id ON sessions(user_id);

CREATE TABLE login_throttle (
    throttle_key TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    window_start TIMESTAMP NOT NULL,
    blocked_until TIMESTAMP
);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY NOT NULL,
    id TEXT NOT NULL UNIQUE,
    occurred_at TIMESTAMP NOT NULL,
    event_type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor TEXT,
    subject TEXT,
    ip TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_type_time ON audit_events(event_type, occurred_at);
