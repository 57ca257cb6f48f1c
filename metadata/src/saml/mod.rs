//! SAML 2.0 building blocks with no HTTP: safe XML reading ([`xml`]), the IdP's signing key and
//! certificate ([`keys`]), the signature algorithms accepted ([`algorithms`]), signatures and
//! encryption ([`sign`]), the IdP's own metadata and reading SPs' metadata ([`metadata`]).

pub mod algorithms;
pub mod keys;
pub mod metadata;
pub mod sign;
pub mod xml;
