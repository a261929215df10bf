//! `mcp-edge-auth`, the command line of the filter: the same core code (`Config::parse`,
//! `decide`, `verify`, `KeySet::parse`, `fetch`, `prm`) run natively, to check a
//! configuration, explain why a token is refused, and inspect a key set.
//!
//! Every command writes its report into a [`Report`]; `main.rs` prints it and exits with
//! its code: 0 allowed / ok, 1 denied / invalid, 2 usage or configuration error.

pub mod args;
pub mod check_config;
pub mod explain;
pub mod hints;
pub mod http;
pub mod jwks_cmd;

use std::fmt::Write as _;

/// Exit codes.
pub const EXIT_OK: i32 = 0;
pub const EXIT_DENIED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// What a command printed and how it ended.
#[derive(Debug, Default)]
pub struct Report {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Report {
    pub fn out(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.stdout, "{}", line.as_ref());
    }

    pub fn err(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.stderr, "{}", line.as_ref());
    }

    /// A usage or configuration error: message on stderr, exit 2.
    pub fn usage(mut self, message: impl AsRef<str>) -> Report {
        self.err(format!("mcp-edge-auth: {}", message.as_ref()));
        self.code = EXIT_USAGE;
        self
    }
}

pub const USAGE: &str = "\
usage:
  mcp-edge-auth check-config FILE
      validate a plugin configuration exactly like the filter, print its rules and the
      protected resource metadata it serves; [--origin URL] when no resource is configured
  mcp-edge-auth explain --config FILE --token TOKEN|-|@FILE [--jwks FILE|URL] [--path PATH]
                        [--method METHOD] [--body FILE|-] [--mcp-method M] [--mcp-name N]
                        [--now UNIX]
      run every check the filter runs on a request with this token, one line per check,
      with a fix for the one that fails; exit 0 allowed, 1 denied, 2 usage/config error
  mcp-edge-auth jwks --uri URL | --discovery URL [--issuer ISS] | --file FILE
                     [--max-bytes N]
      fetch and summarize a key set: which keys the filter uses, which it skips and why";

/// Runs the command line (`argv` without the program name).
pub fn run(argv: &[String]) -> Report {
    let Some((command, rest)) = argv.split_first() else {
        return Report::default().usage(format!("no command\n{USAGE}"));
    };
    match command.as_str() {
        "check-config" => check_config::run(rest),
        "explain" => explain::run(rest),
        "jwks" => jwks_cmd::run(rest),
        "-h" | "--help" | "help" => {
            let mut r = Report::default();
            r.out(USAGE);
            r
        }
        other => Report::default().usage(format!("unknown command {other:?}\n{USAGE}")),
    }
}

/// A value from a token or key set, quoted, control characters escaped, at most 200
/// characters: safe to print on a terminal.
pub fn shown(s: &str) -> String {
    let mut out: String = s.chars().flat_map(char::escape_debug).take(200).collect();
    if s.chars().flat_map(char::escape_debug).nth(200).is_some() {
        out.push('…');
    }
    format!("\"{out}\"")
}

/// Reads a file, or stdin for `-`.
pub fn read_input(name: &str) -> Result<Vec<u8>, String> {
    if name == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        Ok(buf)
    } else {
        std::fs::read(name).map_err(|e| format!("cannot read {name}: {e}"))
    }
}
