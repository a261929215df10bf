//! The OAuth sign-in façade (issue 19), pure core: an authorization server in front of an
//! IdP without client registration (Entra ID and others), made of sans-IO functions.
//!
//! It may use std and external crates only (no `crate::` imports). This first part holds
//! the building blocks: sealed blobs, strict form parsing, redirect URI checks, cookies.

pub mod cookie;
pub mod ct;
pub mod form;
pub mod random;
pub mod redirect;
pub mod response;
pub mod seal;
