//! Small utilities every part may use: byte compares, the clock, protobuf-JSON durations,
//! strict JSON parsing and printable text for log lines and error descriptions.
//!
//! Uses: nothing of this crate.

pub mod bytes;
pub mod clock;
pub mod duration;
pub mod json;
pub mod text;
