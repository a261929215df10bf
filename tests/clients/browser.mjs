// A real headless Chromium (Debian's `chromium`, driven by playwright-core) calling the MCP
// endpoint behind Envoy and the filter from a page of another origin. Driven by
// tests/browser.rs:
//
//   node browser.mjs <page-port> <other-page-port> <mcp-url> <token>
//
// The page at http://localhost:<page-port>/ (an allowed origin) does what a browser MCP client
// does: read the PRM cross-origin, call without a token and read WWW-Authenticate from the
// 401, then initialize with a token (preflight for Authorization, Content-Type,
// Mcp-Session-Id, MCP-Protocol-Version), read Mcp-Session-Id, and call a tool with it.
// A page at http://localhost:<other-page-port>/ (not allowed) tries the same call.
// Prints one JSON line with what each page could see; exit 1 with {"error": …} on failure.

import http from 'node:http';
import { chromium } from 'playwright-core';

const [pagePort, otherPort, mcpUrl, token] = process.argv.slice(2);

function serve(port) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>mcp browser client</title><p>test page</p>');
  });
  return new Promise((resolve) => server.listen(Number(port), '127.0.0.1', () => resolve(server)));
}

// Runs inside the page.
async function allowedPage({ mcpUrl, token }) {
  const out = {};
  const mcp = new URL(mcpUrl);
  const prmUrl = `${mcp.origin}/.well-known/oauth-protected-resource${mcp.pathname}`;
  const prm = await fetch(prmUrl, { headers: { 'MCP-Protocol-Version': '2025-11-25' } });
  out.prm = { status: prm.status, body: await prm.json() };

  const init = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: 'browser-test', version: '1.0.0' },
    },
  };
  const common = {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'MCP-Protocol-Version': '2025-11-25',
  };
  const noToken = await fetch(mcpUrl, { method: 'POST', headers: common, body: JSON.stringify(init) });
  out.no_token = { status: noToken.status, www_authenticate: noToken.headers.get('WWW-Authenticate') };

  const auth = { ...common, Authorization: `Bearer ${token}` };
  const first = await fetch(mcpUrl, { method: 'POST', headers: auth, body: JSON.stringify(init) });
  const sessionId = first.headers.get('Mcp-Session-Id');
  out.initialize = { status: first.status, session_id: sessionId, body: await first.text() };

  const withSession = { ...auth, 'Mcp-Session-Id': sessionId ?? '' };
  const note = await fetch(mcpUrl, {
    method: 'POST',
    headers: withSession,
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  out.initialized = { status: note.status };

  const call = await fetch(mcpUrl, {
    method: 'POST',
    headers: withSession,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'add', arguments: { a: 40, b: 2 } },
    }),
  });
  out.tools_call = { status: call.status, body: await call.text() };
  return out;
}

async function otherPage({ mcpUrl, token }) {
  try {
    const r = await fetch(mcpUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    return { readable: true, status: r.status };
  } catch (e) {
    return { readable: false, error: String(e) };
  }
}

async function main() {
  const servers = [await serve(pagePort), await serve(otherPort)];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  try {
    const requests = [];
    const context = await browser.newContext();
    context.on('request', (r) =>
      requests.push({ method: r.method(), url: r.url(), headers: r.headers() }),
    );
    const page = await context.newPage();
    await page.goto(`http://localhost:${pagePort}/`);
    const allowed = await page.evaluate(allowedPage, { mcpUrl, token });
    const other = await context.newPage();
    await other.goto(`http://localhost:${otherPort}/`);
    const denied = await other.evaluate(otherPage, { mcpUrl, token });
    const preflights = requests
      .filter((r) => r.method === 'OPTIONS')
      .map((r) => ({ url: r.url, request_headers: r.headers['access-control-request-headers'] ?? null }));
    console.log(JSON.stringify({ allowed, denied, preflights, requests: requests.length }));
  } finally {
    await browser.close();
    servers.forEach((s) => s.close());
  }
}

main().catch((e) => {
  console.log(JSON.stringify({ error: String(e?.stack ?? e) }));
  process.exit(1);
});
