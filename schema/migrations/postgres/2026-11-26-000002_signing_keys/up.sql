-- Token signing keys. Private parts are encrypted with a key derived from the master key.
-- A key is published (JWKS) from created_at until expires_at, and signs from activates_at until
-- retires_at; rotation pre-publishes the successor before it starts signing.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    alg TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_key_enc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    activates_at TIMESTAMP NOT NULL,
    retires_at TIMESTAMP,
    expires_at TIMESTAMP
);
CREATE INDEX signing_keys_alg_activates ON signing_keys(alg, activates_at);
