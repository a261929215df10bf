//! `mcp-edge-auth` command line; see `mcp_edge_auth_cli::USAGE` and docs/CLI.md.

use std::io::Write;

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let report = mcp_edge_auth_cli::run(&argv);
    let _ = std::io::stdout().write_all(report.stdout.as_bytes());
    let _ = std::io::stderr().write_all(report.stderr.as_bytes());
    let _ = std::io::stdout().flush();
    std::process::exit(report.code);
}
