// The official MCP TypeScript SDK as an unmodified client of the MCP server behind Envoy and
// the filter. Driven by tests/mcp_clients.rs:
//
//   node ts_client.mjs <flow> <mcp-url> <issuer> [scope]
//
// flow: m2m      ClientCredentialsProvider (client_credentials)
//       authcode authorization code + PKCE; the dev IdP auto-approves, this script follows
//                the redirect itself (what a browser would do) and hands the code back
//       stepup   authorization code + PKCE against a route whose 401 asks for a base scope
//                only; tools/call add meets a 403 insufficient_scope, the SDK starts a new
//                authorization with the challenge's scopes, and the call is retried
//                (the SDK's ClientCredentialsProvider always requests its configured scope,
//                so step-up needs an interactive flow)
//
// Prints one JSON line: every HTTP exchange the SDK made (method, URL, status, the
// WWW-Authenticate it saw), the tools, the tool results, the session id, and the scopes of
// each token it obtained. Exit status 1 with {"error": …} on failure.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const [flow, mcpUrl, issuer, scope] = process.argv.slice(2);
const exchanges = [];
const tokenScopes = [];

// The SDK's fetch, observed: nothing is changed, only recorded.
async function observedFetch(input, init) {
  const url = typeof input === 'string' ? input : input.url ?? String(input);
  const method = init?.method ?? 'GET';
  const res = await fetch(input, init);
  const entry = { method, url, status: res.status };
  const type = res.headers.get('content-type');
  if (type) entry.content_type = type;
  const www = res.headers.get('www-authenticate');
  if (www) entry.www_authenticate = www;
  if (url.endsWith('/token') && res.ok) {
    const body = await res.clone().json();
    tokenScopes.push(body.scope ?? null);
    entry.token_aud = JSON.parse(Buffer.from(body.access_token.split('.')[1], 'base64url')).aud;
    entry.token_scp = JSON.parse(Buffer.from(body.access_token.split('.')[1], 'base64url')).scp ?? null;
  }
  exchanges.push(entry);
  return res;
}

// Authorization code + PKCE with a pre-registered public client.
class AuthCodeProvider {
  constructor() {
    this._tokens = undefined;
    this._verifier = undefined;
    this.code = undefined;
    this.authorizationUrls = [];
  }
  get redirectUrl() {
    return 'http://127.0.0.1:9/callback';
  }
  get clientMetadata() {
    return {
      client_name: 'edge-auth-test',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return { client_id: 'demo-public', issuer };
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
  // What a browser does: visit the authorization URL; the dev IdP approves the test user and
  // redirects to redirect_uri with the code.
  async redirectToAuthorization(url) {
    this.authorizationUrls.push(url.toString());
    const res = await fetch(url, { redirect: 'manual' });
    exchanges.push({ method: 'GET', url: url.origin + url.pathname, status: res.status });
    const location = res.headers.get('location');
    if (!location) throw new Error(`authorize answered ${res.status} without a redirect`);
    const back = new URL(location);
    if (back.searchParams.get('error')) {
      throw new Error(`authorize refused: ${back.searchParams.get('error_description')}`);
    }
    this.code = back.searchParams.get('code');
  }
}

function transportFor(provider) {
  return new StreamableHTTPClientTransport(new URL(mcpUrl), {
    authProvider: provider,
    fetch: observedFetch,
  });
}

// Runs `call`; when the SDK stops for a (new) authorization, completes it the way an app
// does (finishAuth with the code from the redirect) and runs `call` again.
async function authorized(transport, provider, call) {
  try {
    return await call();
  } catch (e) {
    if (!(e instanceof UnauthorizedError) || !provider?.code) throw e;
    const code = provider.code;
    provider.code = undefined;
    await transport.finishAuth(code);
    return await call();
  }
}

async function exercise(client, transport, provider) {
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  const add = await authorized(transport, provider, () =>
    client.callTool({ name: 'add', arguments: { a: 2, b: 3 } }),
  );
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });
  const headers = await client.callTool({ name: 'headers', arguments: {} });
  return {
    tools,
    add: add.content?.[0]?.text,
    whoami: whoami.content?.[0]?.text,
    backend_headers: JSON.parse(headers.content?.[0]?.text ?? '{}'),
    session_id: transport.sessionId ?? null,
  };
}

async function main() {
  const client = new Client({ name: 'mcp-edge-auth-test', version: '1.0.0' });
  let result;
  if (flow === 'm2m') {
    const provider = new ClientCredentialsProvider({
      clientId: 'demo-client',
      clientSecret: 'demo-secret',
      expectedIssuer: issuer,
      scope,
    });
    const transport = transportFor(provider);
    await client.connect(transport);
    result = await exercise(client, transport, undefined);
  } else if (flow === 'authcode' || flow === 'stepup') {
    const provider = new AuthCodeProvider();
    let transport = transportFor(provider);
    try {
      await client.connect(transport);
      throw new Error('expected the first connection to need authorization');
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
    }
    if (!provider.code) throw new Error('no authorization code came back');
    await transport.finishAuth(provider.code);
    transport = transportFor(provider);
    await client.connect(transport);
    result = await exercise(client, transport, provider);
    result.authorization_requests = provider.authorizationUrls.map((u) => {
      const params = new URL(u).searchParams;
      return {
        code_challenge_method: params.get('code_challenge_method'),
        resource: params.get('resource'),
        scope: params.get('scope'),
      };
    });
  } else {
    throw new Error(`unknown flow ${flow}`);
  }
  await client.close();
  console.log(JSON.stringify({ flow, ...result, token_scopes: tokenScopes, exchanges }));
}

main().catch((e) => {
  console.log(JSON.stringify({ flow, error: String(e?.stack ?? e), exchanges }));
  process.exit(1);
});
