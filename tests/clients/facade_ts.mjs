// The official MCP TypeScript SDK signing in through the filter's sign-in façade (issue 19)
// as a native app does: authorization code + PKCE with Dynamic Client Registration against
// the edge, the browser step done by a real headless Chromium (facade_browser.mjs: consent
// page, Approve, the IdP, back to this script's loopback redirect URI), then finishAuth,
// initialize, tools/list, tools/call. Then a refresh: the access token is spoiled, the SDK
// meets a 401 and refreshes through the façade; the previous (rotated) refresh token is
// then refused by the façade.
//
//   node facade_ts.mjs <mcp-url> [scope]
//
// Prints one JSON line: the registration, the consent page (title, buttons, framing
// headers), the browser's response chain (status, origin + path), the callback's
// parameters by name (state checked here, `iss` reported), the tools, the tool results,
// the refresh, and every HTTP exchange the SDK made (method, origin + path, status, the
// token request's grant_type). Never a code, token, verifier or client secret. Exit status
// 1 with {"error": …} on failure.

import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { approve, bare, closeBrowser, startLoopback } from './facade_browser.mjs';

const [mcpUrl, scope] = process.argv.slice(2);
const exchanges = [];

function grantOf(init) {
  const body = init?.body;
  if (!body) return undefined;
  const params = body instanceof URLSearchParams ? body : new URLSearchParams(String(body));
  return params.get('grant_type') ?? undefined;
}

// The SDK's fetch, observed: nothing is changed, only recorded.
async function observedFetch(input, init) {
  const url = typeof input === 'string' ? input : (input.url ?? String(input));
  const method = init?.method ?? 'GET';
  const res = await fetch(input, init);
  const entry = { method, url: bare(url), status: res.status };
  const grant = method === 'POST' && url.includes('/token') ? grantOf(init) : undefined;
  if (grant) entry.grant_type = grant;
  const www = res.headers.get('www-authenticate');
  if (www) entry.www_authenticate = www;
  if (grant && !res.ok) {
    const body = await res.clone().json().catch(() => ({}));
    entry.error = body.error ?? null;
  }
  exchanges.push(entry);
  return res;
}

class FacadeProvider {
  constructor(loopback) {
    this.loopback = loopback;
    this._client = undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this._state = undefined;
    this.browserRuns = [];
    this.callback = undefined;
    this.registrations = 0;
  }
  get redirectUrl() {
    return this.loopback.url;
  }
  get clientMetadata() {
    return {
      client_name: 'facade-ts-driver',
      redirect_uris: [this.loopback.url],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...(scope ? { scope } : {}),
    };
  }
  state() {
    this._state = randomUUID();
    return this._state;
  }
  clientInformation() {
    return this._client;
  }
  saveClientInformation(info) {
    this.registrations += 1;
    this._client = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(t) {
    this._tokens = t;
  }
  saveCodeVerifier(v) {
    this._verifier = v;
  }
  codeVerifier() {
    return this._verifier;
  }
  // The browser step: consent, IdP, and back to the loopback redirect URI.
  async redirectToAuthorization(url) {
    const sent = url.searchParams;
    this.authorization = {
      endpoint: bare(url.toString()),
      code_challenge_method: sent.get('code_challenge_method'),
      resource: sent.get('resource'),
      scope: sent.get('scope'),
      has_state: sent.has('state'),
    };
    const arrival = this.loopback.next();
    const run = await approve(url.toString(), this.loopback.url);
    this.browserRuns.push(run);
    if (!run.consent) throw new Error(`no consent page: ${JSON.stringify(run.error_page ?? run.final)}`);
    const got = await arrival;
    this.callback = {
      names: Object.keys(got.params).sort(),
      state_matches: got.params.state === this._state,
      iss: got.params.iss ?? null,
      error: got.params.error ?? null,
      error_description: got.params.error_description ?? null,
    };
    this.code = got.params.code;
  }
}

function transportFor(provider) {
  return new StreamableHTTPClientTransport(new URL(mcpUrl), {
    authProvider: provider,
    fetch: observedFetch,
  });
}

async function main() {
  const loopback = await startLoopback('/callback');
  const provider = new FacadeProvider(loopback);
  const client = new Client({ name: 'facade-ts-driver', version: '1.0.0' });
  let transport = transportFor(provider);
  try {
    await client.connect(transport);
    throw new Error('expected the first connection to need authorization');
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  if (!provider.code) {
    throw new Error(`no authorization code came back: ${JSON.stringify(provider.callback)}`);
  }
  const code = provider.code;
  provider.code = undefined;
  await transport.finishAuth(code);
  const first = { ...provider._tokens };
  transport = transportFor(provider);
  await client.connect(transport);

  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  const add = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });

  // Refresh through the façade: spoil the access token; the 401 makes the SDK refresh.
  const refresh = { had_refresh_token: Boolean(first.refresh_token) };
  if (first.refresh_token) {
    provider._tokens = { ...provider._tokens, access_token: 'spoiled' };
    const again = (await client.listTools()).tools.length;
    const now = provider._tokens;
    refresh.tools_after = again;
    refresh.access_token_changed = now.access_token !== first.access_token && now.access_token !== 'spoiled';
    refresh.refresh_token_rotated = Boolean(now.refresh_token) && now.refresh_token !== first.refresh_token;
    // The rotated-out refresh token, presented again, must be refused.
    const tokenUrl = exchanges.find((x) => x.grant_type === 'refresh_token')?.url;
    if (tokenUrl) {
      const res = await fetch(tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: first.refresh_token,
          client_id: provider._client.client_id,
        }),
      });
      const body = await res.json().catch(() => ({}));
      refresh.replay = { status: res.status, error: body.error ?? null };
    }
  }
  await client.close();
  loopback.close();
  await closeBrowser();
  const run = provider.browserRuns[0];
  console.log(
    JSON.stringify({
      flow: 'facade-ts',
      registrations: provider.registrations,
      client_id_issued: Boolean(provider._client?.client_id),
      redirect_uri: loopback.url,
      authorization: provider.authorization,
      consent: run?.consent ?? null,
      browser_chain: run?.chain ?? [],
      callback: provider.callback,
      token_scope: first.scope ?? null,
      tools,
      add: add.content?.[0]?.text,
      whoami: whoami.content?.[0]?.text,
      session_id_set: Boolean(transport.sessionId),
      refresh,
      exchanges,
    }),
  );
}

main().catch(async (e) => {
  await closeBrowser().catch(() => {});
  console.log(JSON.stringify({ flow: 'facade-ts', error: String(e?.stack ?? e), exchanges }));
  process.exit(1);
});
