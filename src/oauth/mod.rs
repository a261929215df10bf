//! The OAuth sign-in façade (issue 19), pure core: an authorization server in front of an
//! IdP without client registration (Entra ID and others), made of sans-IO functions.
//!
//! It may use std and external crates only (no `crate::` imports): request parts, settings,
//! the time, randomness ([`random::Random`]) and sealing keys ([`seal::Keys`]) go in; a
//! response comes out.

pub mod cookie;
pub mod ct;
pub mod form;
pub mod metadata;
pub mod page;
pub mod pkce;
pub mod random;
pub mod redirect;
pub mod register;
pub mod request;
pub mod response;
pub mod scopes;
pub mod seal;
pub mod settings;
