-- SAML 2.0: the service providers we answer (their metadata as received, and per-SP settings),
-- signed metadata aggregates they may come from, the replay cache of message IDs, and which SPs
-- took part in an SSO session (for Single Logout).
CREATE TABLE saml_sps (
    entity_id TEXT PRIMARY KEY NOT NULL,
    metadata_xml TEXT NOT NULL,
    source_url TEXT,
    aggregate_url TEXT,
    valid_until TIMESTAMP,
    fetched_at TIMESTAMP NOT NULL,
    require_signed_requests BOOLEAN NOT NULL,
    sign_response BOOLEAN NOT NULL,
    sign_assertion BOOLEAN NOT NULL,
    encrypt_assertions BOOLEAN NOT NULL,
    name_id_format TEXT NOT NULL,
    attributes TEXT NOT NULL,
    allow_national_id BOOLEAN NOT NULL,
    release_permissions TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX saml_sps_aggregate ON saml_sps(aggregate_url);

CREATE TABLE saml_aggregates (
    url TEXT PRIMARY KEY NOT NULL,
    cert_pem TEXT NOT NULL,
    valid_until TIMESTAMP,
    fetched_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE saml_replay (
    replay_key TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX saml_replay_expires ON saml_replay(expires_at);

CREATE TABLE saml_participants (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    sp_entity_id TEXT NOT NULL,
    name_id TEXT NOT NULL,
    name_id_format TEXT NOT NULL,
    session_index TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (session_id, sp_entity_id)
);

CREATE TABLE saml_logouts (
    id TEXT PRIMARY KEY NOT NULL,
    state TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
