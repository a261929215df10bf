//! `jwks --uri URL | --discovery URL [--issuer ISS] | --file FILE`: fetch a key set with the
//! filter's response checks (`keys/fetch.rs`) and list every key: used, or skipped and why
//! (`KeySet::parse`).

use mcp_edge_auth::keys::fetch::DEFAULT_MAX_RESPONSE_BYTES;
use mcp_edge_auth::keys::jwks::KeySet;
use serde_json::Value;

use crate::args::Args;
use crate::http::{self, Fetched};
use crate::{Report, EXIT_DENIED, EXIT_OK};

pub fn run(argv: &[String]) -> Report {
    let mut report = Report::default();
    let args = match Args::parse(argv, &["uri", "discovery", "file", "issuer", "max-bytes"]) {
        Ok(a) => a,
        Err(e) => return report.usage(e),
    };
    if !args.positional.is_empty() {
        return report.usage(format!("unexpected argument {:?}", args.positional));
    }
    let limit = match args.get("max-bytes").map(str::parse::<usize>) {
        None => DEFAULT_MAX_RESPONSE_BYTES,
        Some(Ok(n)) => n,
        Some(Err(_)) => return report.usage("--max-bytes takes a number of bytes"),
    };
    let sources = ["uri", "discovery", "file"]
        .iter()
        .filter(|f| args.get(f).is_some())
        .count();
    if sources != 1 {
        return report.usage("give exactly one of --uri URL, --discovery URL, --file FILE");
    }
    if args.get("issuer").is_some() && args.get("discovery").is_none() {
        return report.usage("--issuer applies to --discovery only");
    }

    let fetched = if let Some(file) = args.get("file") {
        report.out(format!("source: file {file}"));
        match crate::read_input(file) {
            Ok(b) => Fetched::file(b),
            Err(e) => return report.usage(e),
        }
    } else {
        let url = if let Some(disc) = args.get("discovery") {
            match discover(&mut report, disc, args.get("issuer"), limit) {
                Some(u) => u,
                None => {
                    report.code = EXIT_DENIED;
                    return report;
                }
            }
        } else {
            args.get("uri").unwrap_or_default().to_string()
        };
        report.out(format!("source: {url}"));
        match http::get(&url, limit) {
            Ok(f) => f,
            Err(e) => return report.usage(e),
        }
    };
    if let Some(s) = &fetched.status {
        report.out(format!(
            "status: {s}, {} bytes (limit {limit})",
            fetched.size
        ));
    }
    let checked = fetched.jwks(limit);
    // The listing is useful even when the filter would refuse the set (no usable key).
    match KeySet::parse(&fetched.body) {
        Ok(set) => list(&mut report, &fetched.body, &set),
        Err(e) => report.out(format!("not a key set: {e}")),
    }
    match checked {
        Ok(set) => {
            report.out(format!(
                "verdict: the filter accepts this key set ({})",
                set.summary()
            ));
            report.code = EXIT_OK;
        }
        Err(e) => {
            report.out(format!(
                "verdict: the filter refuses this response: {}",
                fetched.describe(&e)
            ));
            report.code = EXIT_DENIED;
        }
    }
    report
}

/// Fetches a discovery document and returns its `jwks_uri`, or prints why not.
fn discover(report: &mut Report, url: &str, issuer: Option<&str>, limit: usize) -> Option<String> {
    report.out(format!("discovery: {url}"));
    let doc = match http::get(url, limit) {
        Ok(d) => d,
        Err(e) => {
            report.out(format!("  {e}"));
            return None;
        }
    };
    let found = http::discovered_issuer(&doc.body);
    let expected = issuer.map_or_else(|| found.clone(), str::to_string);
    match doc.discovery(limit, &expected) {
        Ok(uri) => {
            match issuer {
                Some(i) => report.out(format!("  issuer: {found:?} (equals --issuer {i:?})")),
                None => report.out(format!(
                    "  issuer: {found:?} (not checked: pass --issuer to compare it the way the filter does)"
                )),
            }
            report.out(format!("  jwks_uri: {uri}"));
            Some(uri)
        }
        Err(e) => {
            report.out(format!(
                "verdict: the filter refuses this discovery document: {}",
                doc.describe(&e)
            ));
            None
        }
    }
}

fn text(entry: &Value, name: &str) -> Option<String> {
    match entry.get(name)? {
        Value::String(s) => Some(s.escape_debug().to_string()),
        other => Some(other.to_string()),
    }
}

/// One line per key of the document, in order: used, or skipped with the reason.
fn list(report: &mut Report, body: &[u8], set: &KeySet) {
    let entries: Vec<Value> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("keys").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    report.out(format!(
        "keys: {} in the document, {} used, {} skipped",
        entries.len(),
        set.keys.len(),
        set.skipped.len()
    ));
    let mut used = set.keys.iter();
    for (index, entry) in entries.iter().enumerate() {
        let kid = text(entry, "kid").map_or("(no kid)".to_string(), |k| format!("kid \"{k}\""));
        let kty = text(entry, "kty").unwrap_or_else(|| "?".into());
        let mut parts = vec![format!("kty {kty}")];
        if let Some(crv) = text(entry, "crv") {
            parts.push(format!("crv {crv}"));
        }
        if let Some(alg) = text(entry, "alg") {
            parts.push(format!("alg {alg}"));
        }
        if let Some(u) = text(entry, "use") {
            parts.push(format!("use {u}"));
        }
        match set.skipped.iter().find(|s| s.index == index) {
            Some(skipped) => {
                report.out(format!(
                    "  #{index} {kid} {}: SKIPPED: {}",
                    parts.join(", "),
                    skipped.reason
                ));
            }
            None => {
                // Usable keys keep the document's order, so they pair up one by one.
                if let Some(bits) = used.next().and_then(|k| k.key.rsa_bits()) {
                    parts.push(format!("{bits}-bit modulus"));
                }
                report.out(format!("  #{index} {kid} {}: used", parts.join(", ")));
            }
        }
    }
}
