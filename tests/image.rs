//! The OCI image, built, pushed and pulled for real: what Istio's agent does for an `oci://`
//! WasmPlugin URL (pkg/wasm/imagefetcher.go), step by step, against a real registry.
//!
//! 1. `scripts/image.sh` (what `make image` runs) builds the Dockerfile with buildah into an
//!    OCI archive in a temp dir and reports the manifest digest.
//! 2. A CNCF distribution registry (Debian's `docker-registry`) is started on
//!    127.0.0.1:<free port> with filesystem storage in the temp dir.
//! 3. `skopeo copy oci-archive:... docker://127.0.0.1:<port>/mcp-edge-auth:test` pushes it
//!    (plain HTTP: `--dest-tls-verify=false`), as docs/DEPLOYMENT.md tells users to push.
//! 4. The manifest is fetched from the registry over HTTP, as Istio's agent fetches it: its
//!    sha256 (the digest Istio compares with the WasmPlugin's `sha256`) must equal the
//!    registry's `Docker-Content-Digest` and the digest `make image` printed.
//! 5. `skopeo copy docker://... oci:<dir>` pulls it back. The pulled index names that same
//!    manifest; every blob's sha256 matches its name; the manifest has exactly one layer, of
//!    type `application/vnd.oci.image.layer.v1.tar+gzip` (the type Istio's compat path
//!    requires of an OCI manifest's last layer); gunzipped, it is a tar whose only entry is
//!    `plugin.wasm`, and that file's sha256 equals the built module's.
//! 6. Envoy (tests/support, V8) loads the *pulled* plugin.wasm: the filter answers its
//!    RFC 9728 metadata itself, refuses a request without a token with its 401 and
//!    `resource_metadata` challenge, and passes an ES256-signed token to the backend with the
//!    claim header it adds.
//!
//! Without buildah, skopeo or docker-registry (Debian packages; `make deps` installs them as
//! root) the test prints a `SKIPPED:` line on stderr (not captured by the test harness, and
//! counted by `make test`'s summary) and returns; with `CI=true` a missing tool is a failure.
//! Every process it starts is killed when the test ends, failed or not; on failure the temp
//! dir (archive, registry storage and log, pulled image) is kept and its path printed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use devstack::recorder::Recorder;
use devstack::{sign_jws, KeyKind, KeyRing, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::envoy::{free_port, repo_root, wasm_module_path};
use support::{http, EnvoyBuilder};

/// The commands this test needs, each from the Debian package of the same name.
const TOOLS: [&str; 3] = ["buildah", "skopeo", "docker-registry"];

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const REPO: &str = "mcp-edge-auth";
const TAG: &str = "test";

const ISS: &str = "https://idp.test/tenant/v2.0";
const AUD: &str = "api://mcp-demo";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Says SKIPPED on the real stderr: libtest captures `eprintln!` of passing tests, not
/// direct writes to the stream, so the line shows in `make test` / `cargo test` output.
fn skip(why: &str) {
    if in_ci() {
        panic!("{why} (CI=true: make deps must have installed them)");
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "\nSKIPPED: tests/image.rs (image build, push, pull, load): {why}\n"
    );
}

fn has_command(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            fs::metadata(dir.join(name)).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs a command to completion; panics with its output unless it succeeded. Returns stdout.
fn run(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("could not run {shown}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A temp dir removed on drop, kept (and named) when the test fails.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let p = std::env::temp_dir().join(format!(
            "mcp-edge-auth-image-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("(temp dir kept: {})", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// `docker-registry serve` on 127.0.0.1:<port>, killed and reaped on drop.
struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Registry {
    /// Starts the registry with filesystem storage under `dir` and waits until `GET /v2/`
    /// answers 200. Retries with another port if the one picked was taken meanwhile.
    fn start(dir: &Path) -> Registry {
        let mut last_log = String::new();
        for attempt in 0..3 {
            let port = free_port();
            let config = dir.join("registry.yml");
            let log = dir.join(format!("registry-{attempt}.log"));
            fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: info\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: false\n\
                     http:\n  addr: 127.0.0.1:{port}\n",
                    dir.join("registry-storage").display()
                ),
            )
            .unwrap();
            let out = fs::File::create(&log).unwrap();
            let err = out.try_clone().unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("could not start docker-registry: {e}"));
            let mut reg = Registry { child, port, log };
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if reg.child.try_wait().ok().flatten().is_some() {
                    break; // exited (port taken?): next attempt
                }
                let ok =
                    http::try_request(port, "GET", "/v2/", &[], b"").is_ok_and(|r| r.status == 200);
                if ok {
                    return reg;
                }
                if Instant::now() > deadline {
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
            last_log = fs::read_to_string(&reg.log).unwrap_or_default();
            drop(reg);
        }
        panic!("docker-registry did not serve on 127.0.0.1 (3 attempts); last log:\n{last_log}");
    }

    fn image(&self) -> String {
        format!("127.0.0.1:{}/{REPO}:{TAG}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("---- docker-registry log (tail) ----\n{}", tail.join("\n"));
        }
    }
}

/// A blob of an OCI image layout by digest, after checking its bytes hash to that digest.
fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    let bytes = fs::read(layout.join("blobs/sha256").join(hex))
        .unwrap_or_else(|e| panic!("blob {digest} in {}: {e}", layout.display()));
    assert_eq!(
        sha256_hex(&bytes),
        hex,
        "blob {digest} does not hash to its name"
    );
    bytes
}

/// `gzip -dc` (gzip is essential on Debian): the layer as Istio's agent reads it.
fn gunzip(bytes: Vec<u8>) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run gzip: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || stdin.write_all(&bytes));
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    writer.join().unwrap().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the layer is not gzip ({status})");
    out
}

/// One tar entry: path, type flag, contents.
struct Entry {
    name: String,
    kind: u8,
    data: Vec<u8>,
}

/// A ustar/GNU tar reader for what buildah writes (no PAX or long names expected: any
/// such entry shows up in the list with its own type flag and fails the test's check).
fn tar_entries(tar: &[u8]) -> Vec<Entry> {
    let field = |h: &[u8], from: usize, to: usize| -> String {
        let f = &h[from..to];
        let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
        String::from_utf8_lossy(&f[..end]).into_owned()
    };
    let mut entries = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() {
        let h = &tar[at..at + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let size_field = field(h, 124, 136);
        let size = usize::from_str_radix(size_field.trim(), 8)
            .unwrap_or_else(|e| panic!("tar size field {size_field:?}: {e}"));
        let mut name = field(h, 0, 100);
        let prefix = field(h, 345, 500);
        if h[257..262] == *b"ustar" && !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
        let start = at + 512;
        assert!(
            start + size <= tar.len(),
            "tar entry {name} runs past the end"
        );
        entries.push(Entry {
            name,
            kind: h[156],
            data: tar[start..start + size].to_vec(),
        });
        at = start + size.div_ceil(512) * 512;
    }
    entries
}

#[test]
fn image_pushed_to_a_registry_and_pulled_back_is_the_module_and_runs_in_envoy() {
    let missing: Vec<&str> = TOOLS.into_iter().filter(|t| !has_command(t)).collect();
    if !missing.is_empty() {
        skip(&format!(
            "{} not installed (Debian packages of the same names; `make deps` installs them as root)",
            missing.join(", ")
        ));
        return;
    }
    let started = Instant::now();
    let module_path = wasm_module_path();
    let module = fs::read(&module_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run `make build` (integration tests never build it)",
            module_path.display()
        )
    });
    let module_sha = sha256_hex(&module);
    let tmp = TempDir::new();

    // 1. make image's script, into the temp dir.
    let image_dir = tmp.0.join("image");
    let said = run(Command::new("bash")
        .arg("scripts/image.sh")
        .arg(&image_dir)
        .current_dir(repo_root()));
    let built_digest = fs::read_to_string(image_dir.join("digest"))
        .unwrap()
        .trim()
        .to_string();
    assert!(said.contains(&built_digest), "{said}");
    let archive = image_dir.join("mcp-edge-auth.tar");
    let t_build = started.elapsed();

    // 2. The registry.
    let registry = Registry::start(&tmp.0);
    let image = registry.image();

    // 3. Push, as docs/DEPLOYMENT.md says.
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-no-creds",
        &format!("oci-archive:{}", archive.display()),
        &format!("docker://{image}"),
    ]));

    // 4. The manifest as Istio's agent fetches it (go-containerregistry's remote.Get), and
    //    the digest it computes: sha256 of those bytes.
    let resp = http::request(
        registry.port,
        "GET",
        &format!("/v2/{REPO}/manifests/{TAG}"),
        &[(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.oci.image.index.v1+json",
        )],
        b"",
    );
    assert_eq!(resp.status, 200, "manifest GET: {}", resp.text());
    let registry_digest = format!("sha256:{}", sha256_hex(&resp.body));
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(registry_digest.as_str()),
        "the registry's digest header and the manifest it served disagree"
    );
    assert_eq!(
        registry_digest, built_digest,
        "the registry holds another manifest than make image built (did the push convert it?)"
    );

    // 5. Pull back into an OCI layout and take the module out of it.
    let pulled = tmp.0.join("pulled");
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--src-no-creds",
        &format!("docker://{image}"),
        &format!("oci:{}:{TAG}", pulled.display()),
    ]));
    let index: Value =
        serde_json::from_slice(&fs::read(pulled.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "pulled index: {index}");
    let desc = &manifests[0];
    assert_eq!(
        desc["annotations"]["org.opencontainers.image.ref.name"],
        TAG
    );
    assert_eq!(
        desc["digest"], built_digest,
        "the pulled manifest is not the pushed one"
    );
    let manifest_bytes = blob(&pulled, &built_digest);
    assert_eq!(
        manifest_bytes, resp.body,
        "skopeo pulled other manifest bytes"
    );
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["mediaType"], OCI_MANIFEST, "{manifest}");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "expected a single layer: {manifest}");
    assert_eq!(
        layers[0]["mediaType"], OCI_LAYER_GZIP,
        "Istio's compat path takes an OCI manifest's last layer only as {OCI_LAYER_GZIP}"
    );
    let layer_digest = layers[0]["digest"].as_str().unwrap();
    let layer = blob(&pulled, layer_digest);
    assert_eq!(layers[0]["size"], layer.len());
    let entries = tar_entries(&gunzip(layer));
    let listing: Vec<(String, char)> = entries
        .iter()
        .map(|e| (e.name.clone(), e.kind as char))
        .collect();
    assert_eq!(
        listing,
        [("plugin.wasm".to_string(), '0')],
        "the layer must hold plugin.wasm and nothing else"
    );
    let plugin = &entries[0].data;
    let plugin_sha = sha256_hex(plugin);
    assert_eq!(
        plugin_sha,
        module_sha,
        "plugin.wasm in the pulled image is not {}",
        module_path.display()
    );
    let plugin_path = tmp.0.join("plugin.wasm");
    fs::write(&plugin_path, plugin).unwrap();
    let t_pull = started.elapsed();
    drop(registry);

    // 6. Envoy with the pulled module.
    let key = SigningKey::cached(KeyKind::EcP256, "ec-image");
    let config = json!({
        "providers": {"dev": {
            "issuer": ISS,
            "audiences": [AUD],
            "local_jwks": {"inline_string": KeyRing::new(vec![key.clone()]).jwks().to_string()},
            "algorithms": ["ES256"],
            "claim_to_headers": [{"claim_name": "sub", "header_name": "x-mcp-subject"}]
        }},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "dev"}}],
        "protected_resource": {"scopes_supported": ["mcp.tools"]}
    });
    let backend = Recorder::start();
    let envoy = EnvoyBuilder::new(&config.to_string())
        .wasm_path(&plugin_path)
        .backend_port(backend.port())
        .start()
        .unwrap();
    let port = envoy.port();
    assert!(
        envoy
            .config_yaml()
            .contains(&*plugin_path.to_string_lossy()),
        "Envoy was not given the pulled module"
    );

    let prm = http::get(port, "/.well-known/oauth-protected-resource/mcp");
    assert_eq!(prm.status, 200, "{}", prm.text());
    assert_eq!(
        prm.json()["resource"],
        format!("http://127.0.0.1:{port}/mcp")
    );

    let denied = http::request(port, "POST", "/mcp", &[], b"{}");
    assert_eq!(denied.status, 401, "{}", denied.text());
    let www = denied.header("www-authenticate").unwrap_or_default();
    assert!(
        www.starts_with("Bearer ")
            && www.contains(&format!(
                "resource_metadata=\"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp\""
            )),
        "{www}"
    );

    let now = devstack::now();
    let token = sign_jws(
        &key,
        "ES256",
        &json!({"alg": "ES256", "kid": key.kid, "typ": "JWT"}),
        &json!({"iss": ISS, "aud": AUD, "sub": "image-user", "iat": now - 5, "exp": now + 600}),
    );
    let auth = format!("Bearer {token}");
    let allowed = http::request(port, "POST", "/mcp", &[("authorization", &auth)], b"{}");
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    // Only the allowed request reached the backend, with the claim header the filter adds
    // and without the token.
    let seen = backend.requests();
    assert_eq!(seen.len(), 1, "the backend saw {} requests", seen.len());
    assert_eq!(seen[0].header("x-mcp-subject"), Some("image-user"));
    assert!(!seen[0].has_header("authorization"));
    assert!(envoy.filter_stat_at_least("allowed", 1) >= 1);

    eprintln!(
        "image {built_digest}: plugin.wasm sha256:{plugin_sha} ({} bytes) = {}; \
         built in {:.1}s, pushed+pulled by {:.1}s, Envoy served it by {:.1}s",
        plugin.len(),
        module_path.display(),
        t_build.as_secs_f64(),
        t_pull.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
