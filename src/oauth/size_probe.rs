//! Size probe (cargo feature `size-probe`, off by default; never shipped): one exported
//! function that reaches every façade endpoint with inputs from linear memory, so that the
//! module's size with the façade wired in can be measured before the glue exists
//! (`cargo build --features size-probe`, then scripts/wasm-opt.sh; tests/module_size.rs's
//! export check fails on such a module by design). Not a behaviour: it only keeps code alive.

use super::random::{NoRandomness, Random};
use super::seal::Keys;
use super::settings::{ClientAuth, ConsentMode, Secret, Settings, Spec, Upstream};
use super::{handle, needs_body, route, Ctx, Outcome, Request};

/// Bytes from the input, as a random source (keeps the calls opaque).
struct FromInput<'a>(&'a [u8]);

impl Random for FromInput<'_> {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), NoRandomness> {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = *self.0.get(i % self.0.len().max(1)).ok_or(NoRandomness)?;
        }
        Ok(())
    }
}

/// The input: NUL-separated fields (issuer, resource, redirect pattern, authorization and
/// token endpoints, client id, secret, scope, sealing key, method, path, cookie, body,
/// upstream body). Returns the sum of the response sizes.
fn run(input: &[u8]) -> usize {
    let mut f = input
        .split(|&b| b == 0)
        .map(|s| std::str::from_utf8(s).unwrap_or(""));
    let mut next = || f.next().unwrap_or("");
    let spec = Spec {
        issuer: next().into(),
        resource: next().into(),
        redirect_uris: vec![next().into()],
        upstream: Upstream {
            authorization_endpoint: next().into(),
            token_endpoint: next().into(),
            client_id: next().into(),
            client_secret: Some(Secret::new(next())),
            client_auth: if input.len().is_multiple_of(2) {
                ClientAuth::Basic
            } else {
                ClientAuth::Post
            },
            scope_prefix: Some(next().into()),
            extra_scopes: vec![next().into()],
            send_resource: input.len().is_multiple_of(3),
            authorize_params: vec![(next().into(), next().into())],
        },
        consent: if input.len().is_multiple_of(5) {
            ConsentMode::Remember
        } else {
            ConsentMode::Always
        },
        ..Spec::default()
    };
    let Ok(settings) = Settings::new(spec) else {
        return 1;
    };
    let Ok(keys) = Keys::from_base64(&[next()]) else {
        return 2;
    };
    let method = next();
    let path = next();
    let cookies = [next()];
    let body = next().as_bytes();
    let upstream_body = next().as_bytes();
    let req = Request {
        method,
        path,
        cookies: &cookies,
        origin: Some(next()),
        sec_fetch_site: Some(next()),
        content_type: Some(next()),
        authorization: Some(next()),
        body,
    };
    let mut rng = FromInput(input);
    let mut ctx = Ctx {
        settings: &settings,
        keys: &keys,
        now: input.len() as u64,
        rng: &mut rng,
    };
    let Some(endpoint) = route(&settings, path) else {
        return 3;
    };
    let used = |u: &super::Used| u.id.len() == input.len();
    match handle(&mut ctx, endpoint, &req, &used) {
        Outcome::Respond(r) => r.body.len() + r.headers.len() + usize::from(needs_body(endpoint)),
        Outcome::Upstream(call) => {
            let n = call.body.len() + call.url.len();
            let r = call
                .then
                .finish(&mut ctx, input.len() as u16, upstream_body);
            n + r.body.len() + r.headers.len()
        }
    }
}

/// # Safety
/// `ptr` must point to `len` readable bytes (the probe is never called; it only exists).
#[no_mangle]
pub unsafe extern "C" fn mcp_edge_auth_size_probe(ptr: *const u8, len: usize) -> usize {
    // SAFETY: the caller's promise above.
    let input = unsafe { std::slice::from_raw_parts(ptr, len) };
    run(input)
}
