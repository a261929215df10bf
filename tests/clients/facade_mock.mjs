// A stand-in for the filter's sign-in façade, to check the façade drivers themselves
// (facade_ts.mjs, facade_py.py, facade_mcp_remote.mjs) without Envoy: an MCP server (the
// TypeScript SDK's, stateless, tools add and whoami) behind a bearer check whose 401 names
// its RFC 9728 metadata, RFC 8414 metadata with a registration endpoint, DCR, an
// /authorize that shows a consent page with the façade's markup (`<button name="action"
// value="approve">`), a callback hop, and /token (authorization_code with S256, refresh
// with rotation, the old refresh token refused). It checks far less than the façade does:
// it is not a test of anything but the drivers.
//
//   node facade_mock.mjs [port]      prints "mock http://127.0.0.1:<port>/mcp", runs until killed

import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

const port = Number(process.argv[2] ?? 0);
const rand = () => randomBytes(24).toString('base64url');
const clients = new Map();
const flows = new Map();
const codes = new Map();
const refreshTokens = new Map();
const retired = new Set();
const accessTokens = new Set();
let base;

function send(res, status, body, headers = {}) {
  const isJson = typeof body !== 'string';
  res.writeHead(status, {
    'content-type': isJson ? 'application/json' : 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(isJson ? JSON.stringify(body) : body);
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function redirect(res, url) {
  res.writeHead(302, { location: url, 'cache-control': 'no-store' });
  res.end();
}

function withParams(uri, params) {
  const u = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.set(k, v);
  return u.toString();
}

function mcpServer() {
  const server = new McpServer({ name: 'facade-mock', version: '1.0.0' });
  server.registerTool('add', { inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({
    content: [{ type: 'text', text: String(a + b) }],
  }));
  server.registerTool('whoami', { inputSchema: {} }, async () => ({
    content: [{ type: 'text', text: 'mock-user' }],
  }));
  return server;
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function handle(req, res) {
  const u = new URL(req.url, base);
  const p = u.pathname;
  if (req.method === 'GET' && p.startsWith('/.well-known/oauth-protected-resource')) {
    return send(res, 200, {
      resource: `${base}/mcp`,
      authorization_servers: [base],
      scopes_supported: ['mcp.tools'],
    });
  }
  if (req.method === 'GET' && (p === '/.well-known/oauth-authorization-server' || p === '/.well-known/openid-configuration')) {
    return send(res, 200, {
      issuer: base,
      authorization_endpoint: `${base}/authorize`,
      token_endpoint: `${base}/token`,
      registration_endpoint: `${base}/register`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['none'],
      scopes_supported: ['mcp.tools', 'offline_access'],
      authorization_response_iss_parameter_supported: true,
    });
  }
  if (req.method === 'POST' && p === '/register') {
    const meta = JSON.parse((await readBody(req)) || '{}');
    const client_id = `mock-${rand()}`;
    clients.set(client_id, meta);
    return send(res, 201, {
      ...meta,
      client_id,
      client_id_issued_at: Math.floor(Date.now() / 1000),
      token_endpoint_auth_method: 'none',
    });
  }
  if (req.method === 'GET' && p === '/authorize') {
    const q = Object.fromEntries(u.searchParams);
    const client = clients.get(q.client_id);
    if (!client || !client.redirect_uris?.includes(q.redirect_uri)) {
      return send(res, 400, '<!doctype html><title>Sign-in failed</title><p>unknown client or redirect</p>');
    }
    if (q.code_challenge_method !== 'S256' || !q.code_challenge) {
      return redirect(res, withParams(q.redirect_uri, { error: 'invalid_request', state: q.state, iss: base }));
    }
    const request = rand();
    flows.set(request, q);
    const csrf = rand();
    return send(
      res,
      200,
      `<!doctype html><html><head><title>Allow access?</title></head><body><h1>Allow access?</h1><p><strong>${escape(client.client_name ?? 'An unnamed application')}</strong> asks to use <strong>${escape(base)}/mcp</strong>.</p><form method="post" action="/consent"><input type="hidden" name="request" value="${request}"><input type="hidden" name="csrf" value="${csrf}"><button type="submit" name="action" value="approve">Approve</button><button type="submit" name="action" value="deny">Deny</button></form></body></html>`,
      { 'x-frame-options': 'DENY', 'content-security-policy': "default-src 'none'; frame-ancestors 'none'", 'set-cookie': `mcp-csrf-x=${csrf}; Path=/; HttpOnly; SameSite=Lax` },
    );
  }
  if (req.method === 'POST' && p === '/consent') {
    const f = Object.fromEntries(new URLSearchParams(await readBody(req)));
    const q = flows.get(f.request);
    if (!q) return send(res, 400, '<p>no such request</p>');
    if (f.action !== 'approve') {
      return redirect(res, withParams(q.redirect_uri, { error: 'access_denied', state: q.state, iss: base }));
    }
    // Stands for the trip to the identity provider and back.
    return redirect(res, `${base}/auth/callback?state=${f.request}`);
  }
  if (req.method === 'GET' && p === '/auth/callback') {
    const q = flows.get(u.searchParams.get('state'));
    if (!q) return send(res, 400, '<p>bad state</p>');
    flows.delete(u.searchParams.get('state'));
    const code = rand();
    codes.set(code, q);
    return redirect(res, withParams(q.redirect_uri, { code, state: q.state, iss: base }));
  }
  if (req.method === 'POST' && p === '/token') {
    const f = Object.fromEntries(new URLSearchParams(await readBody(req)));
    const issue = (client_id, scope) => {
      const access_token = `at-${rand()}`;
      const refresh_token = `rt-${rand()}`;
      accessTokens.add(access_token);
      refreshTokens.set(refresh_token, { client_id, scope });
      return send(res, 200, { access_token, token_type: 'Bearer', expires_in: 3600, refresh_token, scope });
    };
    if (f.grant_type === 'authorization_code') {
      const q = codes.get(f.code);
      codes.delete(f.code);
      const ok =
        q &&
        q.client_id === f.client_id &&
        q.redirect_uri === f.redirect_uri &&
        createHash('sha256').update(f.code_verifier ?? '').digest('base64url') === q.code_challenge;
      if (!ok) return send(res, 400, { error: 'invalid_grant', error_description: 'bad code' });
      return issue(q.client_id, q.scope ?? 'mcp.tools');
    }
    if (f.grant_type === 'refresh_token') {
      const g = refreshTokens.get(f.refresh_token);
      if (!g || retired.has(f.refresh_token) || g.client_id !== f.client_id) {
        return send(res, 400, { error: 'invalid_grant', error_description: 'refresh token refused' });
      }
      refreshTokens.delete(f.refresh_token);
      retired.add(f.refresh_token);
      return issue(g.client_id, g.scope);
    }
    return send(res, 400, { error: 'unsupported_grant_type' });
  }
  if (p === '/mcp') {
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!accessTokens.has(token)) {
      return send(res, 401, { error: 'invalid_token' }, {
        'www-authenticate': `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp", scope="mcp.tools"`,
      });
    }
    if (req.method !== 'POST') return send(res, 405, { error: 'method not allowed' });
    const body = JSON.parse(await readBody(req));
    const server = mcpServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      transport.close();
      server.close();
    });
    await server.connect(transport);
    return transport.handleRequest(req, res, body);
  }
  return send(res, 404, { error: 'not found' });
}

const server = http.createServer((req, res) =>
  handle(req, res).catch((e) => {
    if (!res.headersSent) send(res, 500, { error: String(e) });
  }),
);
server.listen(port, '127.0.0.1', () => {
  base = `http://127.0.0.1:${server.address().port}`;
  console.log(`mock ${base}/mcp`);
});
