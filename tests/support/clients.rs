//! The real MCP client programs in tests/clients (Node and Python drivers): run one and read
//! the JSON report it prints last.

use std::process::Command;

use serde_json::Value;

use super::envoy::repo_root;

/// Runs `program args…` in tests/clients and returns the last line of its output that is
/// JSON. Panics (a test failure) when it cannot start, exits non-zero, prints no JSON or
/// reports `{"error": …}`, with its stdout, its stderr and `context()` (say, Envoy's log).
pub fn run_client(program: &str, args: &[&str], context: &dyn Fn() -> String) -> Value {
    let out = Command::new(program)
        .args(args)
        .current_dir(repo_root().join("tests/clients"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (did `make test` install it?): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Option<Value> = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok());
    match report {
        Some(r) if out.status.success() && r.get("error").is_none() => r,
        _ => panic!(
            "{program} {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\n{}",
            out.status,
            context()
        ),
    }
}
