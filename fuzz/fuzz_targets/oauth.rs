//! The sign-in façade's parsers on arbitrary bytes (issue 19): the first byte picks one —
//! form/query bodies, cookies, redirect URIs, sealed blobs, registration JSON — and each
//! either answers or refuses, never panics. Sealed blobs never open without the key; a
//! registration answers 201 or a 4xx, never a 5xx.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_edge_auth::oauth::random::{NoRandomness, Random};
use mcp_edge_auth::oauth::seal::Keys;
use mcp_edge_auth::oauth::settings::{Settings, Spec, Upstream};
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
    match which % 5 {
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
