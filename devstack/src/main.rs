//! `devstack` command line: run the dev IdP, the demo MCP server and the recording
//! backend, or mint tokens from a running IdP.

use std::io::Write;
use std::process::ExitCode;

use devstack::idp::{Idp, IdpConfig};
use devstack::mcp_demo::{McpDemo, McpDemoConfig};
use devstack::recorder::Recorder;
use devstack::{DemoClient, DemoClientConfig, EntraConfig};
use serde_json::{json, Value};

const USAGE: &str = "\
usage:
  devstack idp      [--port 9000] [--issuer URL] [--audience A] [--public-url URL] [--ttl SECS]
                    [--entra [--entra-redirect URL[,URL]] [--entra-secret S | --entra-secret-env VAR]]
  devstack mcp      [--port 9100] [--any-host]
  devstack recorder [--port 9200]
  devstack all      [--idp-port 9000] [--mcp-port 9100] [--recorder-port N]
                    [--issuer URL] [--audience A] [--public-url URL] [--ttl SECS] [--any-host]
                    [--entra [--entra-redirect URL[,URL]] [--entra-secret S]]
                    [--entra-idp-port N [--entra-redirect URL[,URL]] [--entra-secret-env VAR]]
                    [--demo-client-port N --demo-client-resource URL]
  devstack demo-client [--port 9300] --resource URL
  devstack mint     [--idp http://127.0.0.1:9000] [--claims JSON] [--alg RS256] [--kid KID]
                    [--header JSON] [--raw]
  devstack token    [--idp http://127.0.0.1:9000] [--client-id demo-client]
                    [--client-secret demo-secret] [--scope S] [--resource URI]
  devstack bench-tokens [--out .run/bench] [--count 4000] [--issuer URL] [--audience A]

Servers bind 127.0.0.1 and run until killed. `mint` prints a token signed by the
IdP's /mint helper; `token` prints an access token from the client_credentials grant.
--entra: the IdP behaves like Entra ID v2.0 (devstack/README.md, Entra mode).
--entra-secret-env VAR: the Entra client secret from the environment variable VAR (never
printed). `all --entra-idp-port N`: a second dev IdP, in Entra mode, on port N (the first
keeps its plain mode). demo-client: a web app that signs in through the sign-in façade
protecting --resource (an MCP server URL behind Envoy) and shows an MCP call's result.";

/// `--name value` pairs and bare `--flag`s.
struct Args {
    pairs: Vec<(String, Option<String>)>,
}

const FLAGS: [&str; 3] = ["--any-host", "--raw", "--entra"];

impl Args {
    fn parse(raw: &[String]) -> Result<Args, String> {
        let mut pairs = Vec::new();
        let mut it = raw.iter();
        while let Some(a) = it.next() {
            if !a.starts_with("--") {
                return Err(format!("unexpected argument {a:?}"));
            }
            if let Some((k, v)) = a.split_once('=') {
                pairs.push((k.to_string(), Some(v.to_string())));
            } else if FLAGS.contains(&a.as_str()) {
                pairs.push((a.clone(), None));
            } else {
                let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
                pairs.push((a.clone(), Some(v.clone())));
            }
        }
        Ok(Args { pairs })
    }

    fn check_known(&self, known: &[&str]) -> Result<(), String> {
        for (k, _) in &self.pairs {
            if !known.contains(&k.as_str()) {
                return Err(format!("unknown option {k}"));
            }
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn flag(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    fn port(&self, name: &str, default: u16) -> Result<u16, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("{name}: bad port {v:?}")),
        }
    }
}

/// The Entra-mode settings from `--entra-redirect`, `--entra-secret`, `--entra-secret-env`.
fn entra_config(args: &Args) -> Result<EntraConfig, String> {
    let mut e = EntraConfig::default();
    if let Some(r) = args.get("--entra-redirect") {
        e.redirect_uris = r.split(',').map(str::to_string).collect();
    }
    if let Some(s) = args.get("--entra-secret") {
        e.client_secret = s.to_string();
    }
    if let Some(var) = args.get("--entra-secret-env") {
        e.client_secret = match std::env::var(var) {
            Ok(v) if !v.is_empty() => v,
            _ => return Err(format!("--entra-secret-env: {var} is not set")),
        };
    }
    Ok(e)
}

fn idp_config(args: &Args, port: u16) -> Result<IdpConfig, String> {
    let mut cfg = IdpConfig {
        port,
        issuer: args.get("--issuer").map(str::to_string),
        public_base_url: args.get("--public-url").map(str::to_string),
        ..IdpConfig::default()
    };
    if let Some(a) = args.get("--audience") {
        cfg.audience = a.to_string();
    }
    if let Some(t) = args.get("--ttl") {
        cfg.token_ttl_secs = t.parse().map_err(|_| format!("--ttl: bad number {t:?}"))?;
    }
    let entra_options = ["--entra-redirect", "--entra-secret", "--entra-secret-env"];
    if args.flag("--entra") {
        cfg.entra = Some(entra_config(args)?);
    } else if args.get("--entra-idp-port").is_none() {
        if let Some(o) = entra_options.iter().find(|o| args.get(o).is_some()) {
            return Err(format!("{o} needs --entra"));
        }
    }
    Ok(cfg)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn start_idp(cfg: IdpConfig) -> Result<Idp, String> {
    let port = cfg.port;
    let entra = cfg.entra.clone();
    let idp = Idp::try_start(cfg).map_err(|e| format!("idp: cannot bind port {port}: {e}"))?;
    let mut line = format!(
        "idp      {}  issuer={}  jwks={}  audience={}",
        idp.base_url(),
        idp.issuer(),
        idp.jwks_url(),
        idp.audience()
    );
    if let Some(e) = entra {
        // The secret is not printed (it is EntraConfig's default unless --entra-secret).
        line.push_str(&format!(
            "  entra: tenant={} app_id={} client_id={} redirect={}",
            e.tenant_id,
            e.app_id,
            e.client_id,
            e.redirect_uris.join(",")
        ));
    }
    say(&line);
    Ok(idp)
}

fn start_mcp(port: u16, any_host: bool) -> Result<McpDemo, String> {
    let mcp = McpDemo::try_start(McpDemoConfig { port, any_host })
        .map_err(|e| format!("mcp: cannot bind port {port}: {e}"))?;
    say(&format!("mcp      {}", mcp.url()));
    Ok(mcp)
}

fn start_demo_client(port: u16, resource: &str) -> Result<DemoClient, String> {
    let c = DemoClient::try_start(DemoClientConfig {
        port,
        resource: resource.to_string(),
    })
    .map_err(|e| format!("demo-client: cannot bind port {port}: {e}"))?;
    say(&format!("client   {}  (signs in to {resource})", c.url()));
    Ok(c)
}

fn start_recorder(port: u16) -> Result<Recorder, String> {
    let rec =
        Recorder::start_on(port).map_err(|e| format!("recorder: cannot bind port {port}: {e}"))?;
    say(&format!("recorder {}", rec.base_url()));
    Ok(rec)
}

fn parse_json_arg(args: &Args, name: &str) -> Result<Option<Value>, String> {
    args.get(name)
        .map(|s| serde_json::from_str(s).map_err(|e| format!("{name}: invalid JSON: {e}")))
        .transpose()
}

fn body_or_error(resp: devstack::http::HttpResponse, field: &str) -> Result<String, String> {
    if resp.status != 200 {
        return Err(format!("HTTP {}: {}", resp.status, resp.text()));
    }
    let v = resp.json().map_err(|e| format!("bad JSON response: {e}"))?;
    v.get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("no {field} in response: {v}"))
}

fn run(argv: &[String]) -> Result<(), String> {
    let Some(cmd) = argv.first() else {
        return Err(USAGE.to_string());
    };
    let args = Args::parse(argv.get(1..).unwrap_or(&[]))?;
    match cmd.as_str() {
        "idp" => {
            args.check_known(&[
                "--port",
                "--issuer",
                "--audience",
                "--public-url",
                "--ttl",
                "--entra",
                "--entra-redirect",
                "--entra-secret",
                "--entra-secret-env",
            ])?;
            let cfg = idp_config(&args, args.port("--port", 9000)?)?;
            start_idp(cfg)?.wait();
        }
        "mcp" => {
            args.check_known(&["--port", "--any-host"])?;
            start_mcp(args.port("--port", 9100)?, args.flag("--any-host"))?.wait();
        }
        "demo-client" => {
            args.check_known(&["--port", "--resource"])?;
            let resource = args
                .get("--resource")
                .ok_or("--resource URL is required (the MCP server behind the façade)")?;
            start_demo_client(args.port("--port", 9300)?, resource)?.wait();
        }
        "recorder" => {
            args.check_known(&["--port"])?;
            start_recorder(args.port("--port", 9200)?)?.wait();
        }
        "all" => {
            args.check_known(&[
                "--idp-port",
                "--mcp-port",
                "--recorder-port",
                "--issuer",
                "--audience",
                "--public-url",
                "--ttl",
                "--any-host",
                "--entra",
                "--entra-redirect",
                "--entra-secret",
                "--entra-secret-env",
                "--entra-idp-port",
                "--demo-client-port",
                "--demo-client-resource",
            ])?;
            let cfg = idp_config(&args, args.port("--idp-port", 9000)?)?;
            let idp = start_idp(cfg)?;
            let entra_idp = match args.get("--entra-idp-port") {
                Some(_) => Some(start_idp(IdpConfig {
                    port: args.port("--entra-idp-port", 0)?,
                    entra: Some(entra_config(&args)?),
                    ..IdpConfig::default()
                })?),
                None => None,
            };
            let mcp = start_mcp(args.port("--mcp-port", 9100)?, args.flag("--any-host"))?;
            let rec = match args.get("--recorder-port") {
                Some(_) => Some(start_recorder(args.port("--recorder-port", 0)?)?),
                None => None,
            };
            let client = match (
                args.get("--demo-client-port"),
                args.get("--demo-client-resource"),
            ) {
                (Some(_), Some(resource)) => Some(start_demo_client(
                    args.port("--demo-client-port", 0)?,
                    resource,
                )?),
                (None, None) => None,
                _ => {
                    return Err(
                        "--demo-client-port and --demo-client-resource go together".to_string()
                    )
                }
            };
            say("ready");
            let _keep = (rec, mcp, entra_idp, client);
            idp.wait();
        }
        "mint" => {
            args.check_known(&["--idp", "--claims", "--alg", "--kid", "--header", "--raw"])?;
            let idp = args
                .get("--idp")
                .unwrap_or("http://127.0.0.1:9000")
                .trim_end_matches('/');
            let mut req = json!({
                "claims": parse_json_arg(&args, "--claims")?.unwrap_or_else(|| json!({"sub": "dev-user"})),
                "alg": args.get("--alg").unwrap_or("RS256"),
                "raw": args.flag("--raw"),
            });
            if let Some(kid) = args.get("--kid") {
                req["kid"] = json!(kid);
            }
            if let Some(h) = parse_json_arg(&args, "--header")? {
                req["header"] = h;
            }
            let resp = devstack::http::post_json(&format!("{idp}/mint"), &req, &[])
                .map_err(|e| format!("{idp}/mint: {e}"))?;
            say(&body_or_error(resp, "token")?);
        }
        "token" => {
            args.check_known(&[
                "--idp",
                "--client-id",
                "--client-secret",
                "--scope",
                "--resource",
            ])?;
            let idp = args
                .get("--idp")
                .unwrap_or("http://127.0.0.1:9000")
                .trim_end_matches('/');
            let mut form = vec![
                ("grant_type", "client_credentials"),
                (
                    "client_id",
                    args.get("--client-id").unwrap_or("demo-client"),
                ),
                (
                    "client_secret",
                    args.get("--client-secret").unwrap_or("demo-secret"),
                ),
            ];
            if let Some(s) = args.get("--scope") {
                form.push(("scope", s));
            }
            if let Some(r) = args.get("--resource") {
                form.push(("resource", r));
            }
            let resp = devstack::http::post_form(&format!("{idp}/token"), &form, &[])
                .map_err(|e| format!("{idp}/token: {e}"))?;
            say(&body_or_error(resp, "access_token")?);
        }
        "help" | "--help" | "-h" => say(USAGE),
        "bench-tokens" => {
            args.check_known(&["--out", "--count", "--issuer", "--audience"])?;
            let out = std::path::PathBuf::from(args.get("--out").unwrap_or(".run/bench"));
            let count: usize = args
                .get("--count")
                .unwrap_or("4000")
                .parse()
                .map_err(|_| "--count: bad number".to_string())?;
            let issuer = args.get("--issuer").unwrap_or("https://bench.example/");
            let audience = args.get("--audience").unwrap_or("bench");
            bench_tokens(&out, count, issuer, audience)?;
        }
        other => return Err(format!("unknown command {other:?}\n\n{USAGE}")),
    }
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devstack: {e}");
            ExitCode::from(2)
        }
    }
}

/// Writes what `make bench` needs: `jwks.json` (one RSA-2048 and one P-256 key),
/// `rs256.txt` / `ps256.txt` / `es256.txt` (`count` distinct tokens each, one per line) and `one.txt`
/// (the warm token). Tokens are valid for two hours and carry `scp: "mcp.tools"`.
fn bench_tokens(
    out: &std::path::Path,
    count: usize,
    issuer: &str,
    audience: &str,
) -> Result<(), String> {
    use devstack::{KeyKind, KeyRing, SigningKey};
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let rsa = SigningKey::generate(KeyKind::Rsa2048, "bench-rsa");
    let ec = SigningKey::generate(KeyKind::EcP256, "bench-ec");
    let jwks = KeyRing::new(vec![rsa.clone(), ec.clone()]).jwks();
    let write = |name: &str, text: String| {
        std::fs::write(out.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    write("jwks.json", jwks.to_string())?;
    let now = devstack::now();
    let token = |key: &SigningKey, alg: &str, i: usize| {
        let claims = json!({"iss": issuer, "aud": audience, "sub": format!("user-{i}"),
            "iat": now, "exp": now + 7200, "scp": "mcp.tools"});
        devstack::sign_jws(
            key,
            alg,
            &json!({"alg": alg, "kid": key.kid, "typ": "JWT"}),
            &claims,
        )
    };
    for (name, key, alg) in [
        ("rs256.txt", &rsa, "RS256"),
        ("ps256.txt", &rsa, "PS256"),
        ("es256.txt", &ec, "ES256"),
    ] {
        let lines: Vec<String> = (0..count).map(|i| token(key, alg, i)).collect();
        write(name, lines.join("\n") + "\n")?;
    }
    write("one.txt", token(&rsa, "RS256", 0) + "\n")?;
    say(&format!(
        "wrote {} ({count} RS256, PS256 and ES256 tokens)",
        out.display()
    ));
    Ok(())
}
