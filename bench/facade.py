"""The client side of the sign-in façade's rows in `make bench` (bench/bench.py).

A browser's sign-in is walked in plain HTTP against the edge: GET /authorize (the consent
page: its sealed request, CSRF token and CSRF cookie), POST /consent with Approve (303 to the
IdP carrying the sealed upstream `state`, and the binding cookie), then the IdP's redirect
back to the callback, which the script makes itself: the façade never calls the IdP on that
leg (the upstream code is opaque to it), so no IdP is needed until POST /token, whose
upstream call goes to the bench's fixed token response (bench.py, `bootstrap`).

What is single-use, and so what each row can measure:
- the client id (/register), the consent page's sealed request and CSRF pair, and the
  upstream `state` with its binding cookie are stateless and reusable until they expire
  (`state_ttl`): /authorize, /consent and the callback get a wrk steady state, each from one
  flow made when its Envoy is up. (The callback mints a new façade code per call; the
  upstream code inside is single-use at the IdP, not at the edge.)
- façade codes and refresh tokens are single-use, recorded per Envoy in a bounded ring
  (src/oauth/used.rs): POST /token is measured as a batch of fresh ones, each sent once.
"""
import base64
import hashlib
import html
import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESOURCE = "http://127.0.0.1/mcp"  # bench.plugin()'s protected resource (clients send it)
SCOPE = "mcp.tools"
CLIENT_REDIRECT = "http://127.0.0.1:7777/cb"  # loopback: allowed on any port (RFC 8252)
METADATA = "/.well-known/oauth-authorization-server"
CALLBACK = "/auth/callback"
# Single-use requests sent once each: BATCH measured, after WARM sent one at a time (V8
# tiers the token path up). Together within one code-ring slot's 512 ids (src/oauth/used.rs).
BATCH = int(os.environ.get("BENCH_FACADE_BATCH", "448"))
WARM = 32
# The longest a batch may take (wrk's -d; the batch ends it as soon as the last answer is in).
BATCH_WINDOW = 30
# The used-id ledger (src/oauth/used.rs: slots per ring, ids per slot) and the default
# lifetimes (code_ttl 60 s, refresh_ttl 30 days: src/oauth/settings.rs, docs/CONFIG.md).
CODE_SLOTS, CODE_CAPACITY, CODE_TTL = 16, 512, 60
REFRESH_SLOTS, REFRESH_CAPACITY, REFRESH_TTL = 128, 2048, 2592000


def bucket_width(ttl, slots):
    """Seconds of expiry one slot covers: the lifetime over (slots - 2), rounded up (used.rs)."""
    return -(-ttl // max(slots - 2, 1))


def ledger_ceilings():
    """The sustained redemptions per Envoy the ledger allows at the default lifetimes (lines)."""
    code_w = bucket_width(CODE_TTL, CODE_SLOTS)
    refresh_w = bucket_width(REFRESH_TTL, REFRESH_SLOTS)
    return [
        "The used-id ledger (src/oauth/used.rs) caps sustained redemptions per Envoy process. At the default",
        f"lifetimes: codes {CODE_CAPACITY} per slot, a slot per {code_w} s of expiries (code_ttl {CODE_TTL} s / "
        f"{CODE_SLOTS - 2}, rounded up): **{CODE_CAPACITY / code_w:.1f} code redemptions/s**;",
        f"refresh tokens: one entry per family (sign-in), not per use, {REFRESH_CAPACITY} per slot in {REFRESH_SLOTS} slots",
        f"chosen by the family's digest: **about {REFRESH_SLOTS * REFRESH_CAPACITY:,} families alive** (sign-ins that refreshed",
        "within refresh_ttl), however often each refreshes.",
        "Past that, POST /token answers 503 temporarily_unavailable until the slot's entries expire",
        f"(`python3 bench/bench.py ledger` shows it). A batch ({BATCH} + {WARM} warm-up, minted within a few seconds)",
        "stays within one or two slots of each ring.",
    ]


@dataclass
class Request:
    """One request and the status it should get."""
    method: str
    path: str
    expect: int
    headers: dict = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Batch:
    """Single-use requests to one path, each sent once."""
    path: str
    bodies: list
    expect: int = 200


def send(port, req):
    """(status, headers as a list of pairs, body) of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(req.method, req.path, body=req.body or None, headers=req.headers)
        r = conn.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        conn.close()


class Browser:
    """One keep-alive connection with a cookie jar: what a browser brings to the edge."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.jar = {}

    def cookie_header(self):
        return "; ".join(f"{k}={v}" for k, v in self.jar.items())

    def request(self, method, path, body=None, content_type=None, expect=None):
        headers = {}
        if self.jar:
            headers["Cookie"] = self.cookie_header()
        if content_type:
            headers["Content-Type"] = content_type
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        text = r.read().decode()
        for name, value in r.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                k, v = pair.split("=", 1)
                if "Max-Age=0" in value:
                    self.jar.pop(k, None)
                else:
                    self.jar[k] = v
        if expect is not None and r.status != expect:
            raise SystemExit(f"façade flow: {method} {path.split('?')[0]} answered {r.status}, not {expect}: {text[:300]}")
        return r.status, r.getheader("location"), text

    def close(self):
        self.conn.close()


def form(pairs):
    return urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)


def challenge(verifier):
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def register_body():
    return json.dumps({"client_name": "bench", "redirect_uris": [CLIENT_REDIRECT],
                       "token_endpoint_auth_method": "none"}).encode()


def register(port):
    """A registered client's id (POST /register)."""
    status, _, body = send(port, Request("POST", "/register", 201, {"Content-Type": "application/json"}, register_body()))
    if status != 201:
        raise SystemExit(f"façade flow: /register answered {status}: {body[:300]!r}")
    return json.loads(body)["client_id"]


def authorize_path(client_id, verifier):
    return "/authorize?" + form([
        ("client_id", client_id), ("redirect_uri", CLIENT_REDIRECT), ("response_type", "code"),
        ("state", "client-state"), ("code_challenge", challenge(verifier)),
        ("code_challenge_method", "S256"), ("resource", RESOURCE), ("scope", SCOPE)])


def hidden(page, name):
    return html.unescape(re.search(rf'name="{name}" value="([^"]*)"', page).group(1))


def consent_body(page):
    """Approve on a consent page, as its form posts it."""
    return form([("request", hidden(page, "request")), ("csrf", hidden(page, "csrf")), ("action", "approve")])


def approve(browser, client_id, verifier):
    """Consent page, then Approve: the sealed upstream `state` (the binding cookie is in the jar)."""
    _, _, page = browser.request("GET", authorize_path(client_id, verifier), expect=200)
    _, to_idp, _ = browser.request("POST", "/consent", consent_body(page), "application/x-www-form-urlencoded", expect=303)
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(to_idp).query))["state"]


def callback_path(state, upstream_code):
    """Where the IdP sends the browser back to."""
    return f"{CALLBACK}?" + form([("code", upstream_code), ("state", state)])


def code_from(location):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))["code"]


# The steady rows: each builds its request (from one flow where it needs one) once its Envoy
# is up; wrk then sends that same request again and again.
STEADY_VERIFIER = "v" * 43  # their flows' codes are never redeemed


def metadata_request(port):
    """GET the RFC 8414 metadata."""
    return Request("GET", METADATA, 200)


def register_request(port):
    """POST /register: a public client with a loopback redirect URI."""
    return Request("POST", "/register", 201, {"Content-Type": "application/json"}, register_body())


def authorize_request(port):
    """GET /authorize of a registered client: the consent page."""
    return Request("GET", authorize_path(register(port), STEADY_VERIFIER), 200)


def consent_request(port):
    """POST /consent, Approve, with the page's form and CSRF cookie: 303 to the IdP."""
    browser = Browser(port)
    _, _, page = browser.request("GET", authorize_path(register(port), STEADY_VERIFIER), expect=200)
    body = consent_body(page).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": browser.cookie_header()}
    browser.close()
    return Request("POST", "/consent", 303, headers, body)


def callback_request(port):
    """GET the callback as the IdP redirects the browser there, with the approved flow's
    `state` and binding cookie: 302 to the client with a new code."""
    browser = Browser(port)
    state = approve(browser, register(port), STEADY_VERIFIER)
    headers = {"Cookie": browser.cookie_header()}
    browser.close()
    return Request("GET", callback_path(state, "upstream-code"), 302, headers)


# POST /token: single-use codes and refresh tokens, minted by real flows.

def mint_codes(port, client_id, n):
    """n façade codes, each from its own flow (consent page, Approve, callback): the
    token request bodies that redeem them."""
    browser = Browser(port)
    bodies = []
    for i in range(n):
        verifier = secrets.token_urlsafe(32)
        state = approve(browser, client_id, verifier)
        _, to_client, _ = browser.request("GET", callback_path(state, f"upstream-code-{i}"), expect=302)
        bodies.append(form([
            ("grant_type", "authorization_code"), ("code", code_from(to_client)),
            ("client_id", client_id), ("redirect_uri", CLIENT_REDIRECT),
            ("code_verifier", verifier), ("resource", RESOURCE)]))
    browser.close()
    return bodies


def refresh_body(client_id, refresh_token):
    return form([("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)])


def post_token(port, body, expect=200):
    """One POST /token, checked; its JSON answer."""
    status, _, answer = send(port, Request("POST", "/token", expect, {"Content-Type": "application/x-www-form-urlencoded"}, body.encode()))
    if status != expect:
        raise SystemExit(f"façade flow: /token answered {status}, not {expect}: {answer[:300]!r}")
    return json.loads(answer)


def code_batch(port):
    """BATCH fresh codes to redeem (WARM more redeemed first, one at a time)."""
    client_id = register(port)
    bodies = mint_codes(port, client_id, WARM + BATCH)
    for body in bodies[:WARM]:
        post_token(port, body)
    return Batch("/token", bodies[WARM:])


def refresh_batch(port):
    """BATCH fresh refresh tokens to use (WARM more used first, one at a time): each from
    a code redeemed as a batch beforehand (unmeasured)."""
    client_id = register(port)
    with_refresh = run_batch(port, Batch("/token", mint_codes(port, client_id, WARM + BATCH)), keep_answers=True)
    tokens = [json.loads(a)["refresh_token"] for a in with_refresh["answers"]]
    if len(tokens) != WARM + BATCH:
        raise SystemExit(f"façade flow: {len(tokens)} of {WARM + BATCH} codes redeemed ({with_refresh['statuses']})")
    for t in tokens[:WARM]:
        post_token(port, refresh_body(client_id, t))
    return Batch("/token", [refresh_body(client_id, t) for t in tokens[WARM:]])


def run_batch(port, batch, cpu=None, keep_answers=False):
    """Sends every body of the batch once, 16 at a time (wrk -c16, bench/batch.lua): req/s
    over the batch (first request sent to last answer), p50/p99 latency, the statuses;
    with `cpu` (a function reading Envoy's CPU seconds) Envoy's CPU time per request over
    the batch, with keep_answers the bodies of the expected answers."""
    with tempfile.TemporaryDirectory() as d:
        bodies = os.path.join(d, "bodies")
        answers = os.path.join(d, "answers")
        open(bodies, "w").write("".join(b + "\n" for b in batch.bodies))
        env = dict(os.environ, BODIES=bodies, EXPECT=str(batch.expect))
        if keep_answers:
            env["ANSWERS"] = answers
        cpu0 = cpu() if cpu else 0
        wrk = subprocess.Popen(["wrk", "-t1", "-c16", "-d", f"{BATCH_WINDOW}s", "--latency", "-s",
                                os.path.join(ROOT, "bench/batch.lua"), f"http://127.0.0.1:{port}{batch.path}"],
                               env=env, stdout=subprocess.PIPE, text=True)
        for line in wrk.stdout:
            if line.startswith("batch finished"):
                cpu1 = cpu() if cpu else 0
                wrk.send_signal(signal.SIGINT)  # ends wrk's -d wait: it prints its summary
                break
        out = wrk.communicate()[0]
        m = re.search(r"^batch: (\d+) answered in ([\d.]+) s, (\d+) as expected, statuses (.*)$", out, re.M)
        if not m:
            raise SystemExit(f"façade batch: not finished within {BATCH_WINDOW} s:\n{out}")
        answered, seconds, expected = int(m.group(1)), float(m.group(2)), int(m.group(3))
        p = {q: float(v) / 1000 for q, v in re.findall(r"^batch p(\d+): ([\d.]+) us$", out, re.M)}
        r = {"rps": answered / seconds, "requests": answered, "seconds": seconds,
             "p50": p.get("50", float("nan")), "p99": p.get("99", float("nan")),
             "statuses": m.group(4), "ok": answered == expected == len(batch.bodies)}
        if cpu:
            r["cpu_us"] = (cpu1 - cpu0) * 1e6 / answered
        if keep_answers:
            r["answers"] = [line for line in open(answers) if line.strip()] if os.path.exists(answers) else []
        return r


class CodeMint:
    """One approved flow whose callback is called again and again: each call seals a new
    code (its own id) wrapping the same upstream code, which only the IdP would refuse twice.
    Fast enough to put more codes than a ring slot holds into one bucket of expiries."""

    def __init__(self, port):
        self.client_id = register(port)
        self.verifier = secrets.token_urlsafe(32)
        self.browser = Browser(port)
        self.state = approve(self.browser, self.client_id, self.verifier)
        self.approved = dict(self.browser.jar)  # the binding cookie, which each callback answer deletes

    def token_bodies(self, n):
        """n codes sealed within one code bucket (started right after a boundary, minted again
        if the minting crossed the next): their token request bodies."""
        width = bucket_width(CODE_TTL, CODE_SLOTS)
        while True:
            time.sleep(width - time.time() % width + 0.05)
            started = int(time.time())
            codes = []
            for i in range(n):
                self.browser.jar = dict(self.approved)
                _, to_client, _ = self.browser.request("GET", callback_path(self.state, f"upstream-code-{i}"), expect=302)
                codes.append(code_from(to_client))
            if int(time.time()) // width == started // width:
                return [form([("grant_type", "authorization_code"), ("code", c), ("client_id", self.client_id),
                              ("redirect_uri", CLIENT_REDIRECT), ("code_verifier", self.verifier)]) for c in codes]
            print("ledger check: the minting crossed a bucket boundary, again", flush=True)


def ledger_check(port):
    """Overfills a slot of the code ring on purpose, redeeming as batches (-c16): the code
    ring's capacity + 8 codes sealed within one bucket (expected: the capacity answered 200,
    the rest 503). Then the refresh ring's slot capacity + 52 refresh tokens, each from its
    own sign-in (codes redeemed within the code ring's limit, 420 per code bucket), used at
    once: each is its own family, spread over the ring's slots by digest, so all are
    expected to answer 200 (before families, one slot took them all: capacity 200, rest 503).
    Returns (codes batch, refresh batch, whether the refresh tokens were issued within one
    refresh_ttl/126 window, as the old per-use ring bucketed them)."""
    mint = CodeMint(port)
    codes = run_batch(port, Batch("/token", mint.token_bodies(CODE_CAPACITY + 8)))
    width = bucket_width(REFRESH_TTL, REFRESH_SLOTS)
    first = int(time.time()) + REFRESH_TTL
    tokens = []
    while len(tokens) < REFRESH_CAPACITY + 52:
        redeemed = run_batch(port, Batch("/token", mint.token_bodies(420)), keep_answers=True)
        tokens += [json.loads(a)["refresh_token"] for a in redeemed["answers"]]
    one_bucket = first // width == (int(time.time()) + REFRESH_TTL) // width
    bodies = [refresh_body(mint.client_id, t) for t in tokens[:REFRESH_CAPACITY + 52]]
    return codes, run_batch(port, Batch("/token", bodies)), one_bucket
