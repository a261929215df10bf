//! The sign-in façade's parsers on arbitrary bytes (issue 19): the first byte picks one —
//! form/query bodies, cookies, redirect URIs, sealed blobs, registration JSON, the IdP's
//! metadata document (`upstream.discovery`), a used-grant ledger slot — and each either
//! answers or refuses, never panics. Sealed blobs never open without the key; a
//! registration answers 201 or a 4xx, never a 5xx; endpoints taken from a metadata document
//! are https URLs on the document's host; a ledger slot that accepts a use refuses it next.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_edge_auth::oauth::random::{NoRandomness, Random};
use mcp_edge_auth::oauth::seal::Keys;
use mcp_edge_auth::oauth::settings::{Settings, Spec, Upstream};
use mcp_edge_auth::oauth::discovery::{self, Rules};
use mcp_edge_auth::oauth::settings::Ttls;
use mcp_edge_auth::oauth::used::{self, Record, Ring, UsedKind};
use mcp_edge_auth::oauth::{cookie, form, redirect, register, seal, Ctx};

/// Deterministic bytes (fuzzing only).
struct Counter(u8);

impl Random for Counter {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), NoRandomness> {
        for b in buf.iter_mut() {
            self.0 = self.0.wrapping_add(151);
            *b = self.0;
        }
        Ok(())
    }
}

fn settings() -> Settings {
    let spec = Spec {
        issuer: "https://mcp.example.com".into(),
        resource: "https://mcp.example.com/mcp".into(),
        scopes_supported: vec!["calculator.add".into()],
        redirect_uris: vec![
            "http://127.0.0.1/*".into(),
            "http://localhost/*".into(),
            "https://claude.ai/api/mcp/auth_callback".into(),
            "vscode://vscode.github-authentication/did-authenticate".into(),
        ],
        upstream: Upstream {
            authorization_endpoint: "https://login.example.com/authorize".into(),
            token_endpoint: "https://login.example.com/token".into(),
            client_id: "upstream-client".into(),
            ..Upstream::default()
        },
        ..Spec::default()
    };
    Settings::new(spec).expect("fixed settings")
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 7 {
        0 => {
            let _ = form::fuzz_parse(rest);
        }
        1 => {
            let _ = cookie::fuzz_get(rest);
        }
        2 => {
            let _ = redirect::fuzz_check(rest);
        }
        3 => {
            // Another key sealed nothing here: nothing opens.
            let keys = Keys::new(&[[9u8; 32]]).expect("key");
            assert!(seal::fuzz_open(&keys, rest).is_err());
        }
        5 => {
            let rules = Rules {
                document_uri: "https://login.example.com/tid/v2.0/.well-known/openid-configuration",
                issuer: Some("https://login.example.com/tid/v2.0"),
                token_cluster_set: false,
                max_bytes: 64 * 1024,
            };
            if let Ok(e) = discovery::parse(200, rest, &rules) {
                let a = e.authorization_endpoint.to_ascii_lowercase();
                assert!(a.starts_with("https://"), "{a}");
                let t = e.token_endpoint.to_ascii_lowercase();
                assert!(
                    t == "https://login.example.com" || t.starts_with("https://login.example.com/"),
                    "{t}"
                );
            }
        }
        6 => {
            // The first byte picks the ring and generation; the rest is the slot's bytes.
            let Some((&g, slot)) = rest.split_first() else {
                return;
            };
            let kind = if g & 1 == 0 { UsedKind::Code } else { UsedKind::Refresh };
            let ring = Ring::of(kind, &Ttls::default());
            let now = 1_700_000_000;
            let generation = u32::from(g >> 1);
            match used::record(&ring, slot, "refresh:f", generation, now + 60, now) {
                Record::Added(b) | Record::Replay(Some(b)) => {
                    assert!(b.starts_with(used::MAGIC));
                    assert!(used::refused(&b, "refresh:f", generation, now));
                }
                Record::Replay(None) => assert!(used::refused(slot, "refresh:f", generation, now)),
                Record::Full | Record::Unreadable => {}
            }
        }
        _ => {
            let s = settings();
            let keys = Keys::new(&[[7u8; 32]]).expect("key");
            let mut rng = Counter(0);
            let mut ctx = Ctx {
                settings: &s,
                keys: &keys,
                now: 1_700_000_000,
                rng: &mut rng,
            };
            let status = register::fuzz_register(&mut ctx, rest);
            assert!(status == 201 || (400..500).contains(&status), "{status}");
        }
    }
});
