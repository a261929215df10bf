//! Shared helpers for integration tests that run the real Envoy with the built module.
//!
//! Use from a test file with `mod support;`. Nothing here builds the module: run
//! `make build` (or `make test`) first.
//!
//! - [`envoy`]: [`EnvoyBuilder`] / [`Envoy`]: start Envoy on ephemeral ports, read its log
//!   and stats.
//! - [`http`]: a raw HTTP/1.1 client that sends exactly the bytes a test asks for.
//! - [`clients`]: run a real MCP client program from tests/clients and read its report.

// Each test binary compiles this module separately and uses only part of it.
#![allow(dead_code, unused_imports)]
// Test helpers report failures the way tests do: by panicking with a useful message.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

pub mod clients;
pub mod envoy;
pub mod facade;
pub mod http;

pub use envoy::{Envoy, EnvoyBuilder, StartError};
pub use http::{request, Response};
