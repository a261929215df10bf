//! GET over http(s) the way the filter's callouts see it: no redirects followed, the body
//! read up to one byte past the cap, status and body handed to the core's `fetch` checks.

use std::io::Read;
use std::time::Duration;

use mcp_edge_auth::keys::fetch::{self, FetchError, Target};
use mcp_edge_auth::keys::jwks::KeySet;

/// A response as the core's response checks take it.
pub struct Fetched {
    /// `None`: no response at all (connection failure, timeout).
    pub status: Option<String>,
    pub body: Vec<u8>,
    /// `content-length` when given, else the bytes read.
    pub size: usize,
    /// Why there was no response.
    pub transport_error: Option<String>,
}

/// GETs `url` (validated with the core's `Target::parse`, like a configured URI).
pub fn get(url: &str, limit: usize) -> Result<Fetched, String> {
    Target::parse(url)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .max_redirects(0)
        .max_redirects_will_error(false)
        .http_status_as_error(false)
        .user_agent("mcp-edge-auth")
        .build()
        .into();
    let mut response = match agent.get(url).header("accept", "application/json").call() {
        Ok(r) => r,
        Err(e) => {
            return Ok(Fetched {
                status: None,
                body: Vec::new(),
                size: 0,
                transport_error: Some(e.to_string()),
            })
        }
    };
    let status = response.status().as_u16().to_string();
    let declared = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let mut body = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    response
        .body_mut()
        .as_reader()
        .take(cap)
        .read_to_end(&mut body)
        .map_err(|e| format!("reading {url}: {e}"))?;
    Ok(Fetched {
        status: Some(status),
        size: declared.unwrap_or(body.len()).max(body.len()),
        body,
        transport_error: None,
    })
}

impl Fetched {
    /// A local file, as if served with status 200.
    pub fn file(body: Vec<u8>) -> Fetched {
        Fetched {
            status: Some("200".into()),
            size: body.len(),
            body,
            transport_error: None,
        }
    }

    /// The core's JWKS response check (status, size cap, JSON, at least one usable key).
    pub fn jwks(&self, limit: usize) -> Result<KeySet, FetchError> {
        fetch::jwks_response(self.status.as_deref(), Some(&self.body), self.size, limit)
    }

    /// The core's discovery document check; returns `jwks_uri`.
    pub fn discovery(&self, limit: usize, issuer: &str) -> Result<String, FetchError> {
        fetch::discovery_response(
            self.status.as_deref(),
            Some(&self.body),
            self.size,
            limit,
            issuer,
        )
    }

    /// An error text that also says why nothing came back.
    pub fn describe(&self, e: &FetchError) -> String {
        match (&self.transport_error, e) {
            (Some(t), FetchError::NoResponse) => format!("{e}: {t}"),
            _ => e.to_string(),
        }
    }
}

/// Loads a key set from a file or an http(s) URL. A URL that serves an OIDC discovery
/// document (it has `jwks_uri`) is followed, checking its issuer against `issuer`.
pub fn load_key_set(
    source: &str,
    limit: usize,
    issuer: Option<&str>,
) -> Result<(KeySet, String), String> {
    if !(source.starts_with("http://") || source.starts_with("https://")) {
        let body = crate::read_input(source)?;
        let set = Fetched::file(body)
            .jwks(limit)
            .map_err(|e| format!("{source}: {e}"))?;
        return Ok((set, format!("file {source}")));
    }
    let first = get(source, limit)?;
    let is_discovery = serde_json::from_slice::<serde_json::Value>(&first.body)
        .ok()
        .is_some_and(|v| v.get("jwks_uri").is_some() && v.get("keys").is_none());
    if !is_discovery {
        let set = first
            .jwks(limit)
            .map_err(|e| format!("{source}: {}", first.describe(&e)))?;
        return Ok((set, source.to_string()));
    }
    let expected = match issuer {
        Some(i) => i.to_string(),
        None => discovered_issuer(&first.body),
    };
    let jwks_uri = first
        .discovery(limit, &expected)
        .map_err(|e| format!("{source}: {}", first.describe(&e)))?;
    let second = get(&jwks_uri, limit)?;
    let set = second
        .jwks(limit)
        .map_err(|e| format!("{jwks_uri}: {}", second.describe(&e)))?;
    Ok((set, format!("{jwks_uri} (from discovery {source})")))
}

/// The `issuer` a discovery document states (empty when it has none).
pub fn discovered_issuer(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("issuer").and_then(|i| i.as_str()).map(str::to_string))
        .unwrap_or_default()
}
