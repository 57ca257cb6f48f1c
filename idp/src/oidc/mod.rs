//! OpenID Connect / OAuth 2 endpoints. So far: the JWKS (`/oauth2/jwks`); discovery, authorize,
//! token and the rest arrive with the OIDC issue.

pub mod jwks;
