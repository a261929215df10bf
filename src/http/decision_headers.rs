//! The request headers a decision reads. `decide::Request::from_headers` fills one slot per
//! name, in this order; the bench's pass-through module (`bench/passthrough`, letter `n`)
//! includes this file to price reading them one host call each.

/// The names, lower case, in the order of `Request::from_headers`'s slots.
pub const NAMES: [&str; 10] = [
    ":method",
    ":path",
    ":scheme",
    ":authority",
    "x-forwarded-proto",
    "authorization",
    "origin",
    "access-control-request-method",
    "mcp-method",
    "mcp-name",
];
