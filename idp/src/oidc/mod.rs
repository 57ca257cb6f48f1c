//! OpenID Connect / OAuth 2 endpoints: discovery, authorize (with PAR, consent and form_post),
//! token, userinfo, introspection, revocation, JWKS, RP-initiated and back-channel logout and
//! dynamic client registration.

pub mod answer;
pub mod authorize;
pub mod cache;
mod carry;
pub mod claims;
pub mod client_auth;
pub mod discovery;
pub mod error;
pub mod introspect;
pub mod issue;
pub mod jwks;
pub mod logout;
pub mod outbound;
pub mod par;
pub mod pkce;
pub mod privileged;
pub mod register;
pub mod request;
pub mod revoke;
pub mod token;
pub mod userinfo;
