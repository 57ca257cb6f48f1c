//! OpenID Connect / OAuth 2 endpoints. So far: the JWKS (`/oauth2/jwks`) and the token endpoint
//! for `client_credentials`; discovery, authorize and the other grants arrive with the OIDC issue.

pub mod cache;
pub mod error;
pub mod jwks;
pub mod token;
