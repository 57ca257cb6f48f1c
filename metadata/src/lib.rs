//! Keys and metadata (to be filled by the OpenID Connect and SAML issues): signing and encryption
//! keys with rotation (private parts encrypted with the master key), JWKS, the OIDC discovery
//! document, IdP SAML metadata, and parsing/validation of remote SAML metadata.
//!
//! Intentionally empty today: nothing here is used yet, and nothing is faked.
