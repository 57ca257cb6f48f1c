//! OpenID Connect / OAuth 2 endpoints. So far: the JWKS (`/oauth2/jwks`), the token endpoint
//! for `client_credentials` and introspection; discovery, authorize and the other grants arrive with the OIDC issue.

pub mod cache;
pub mod client_auth;
pub mod error;
pub mod introspect;
pub mod jwks;
pub mod token;
