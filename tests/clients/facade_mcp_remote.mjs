// mcp-remote (npm, pinned in package.json) as Claude Desktop runs it, signing in through the
// filter's sign-in façade (issue 19): started on stdio against the edge's MCP URL, it
// registers itself (DCR), prints the authorization URL and tries to open a browser; here
// the "browser" it opens is a stub (BROWSER and xdg-open on PATH point at a script that
// does nothing), the URL is read from its stderr and completed in a real headless Chromium
// (facade_browser.mjs: consent page, Approve, the IdP, back to mcp-remote's own callback
// server on 127.0.0.1:<port>/oauth/callback). Then initialize, tools/list and tools/call
// go over its stdio.
//
//   node facade_mcp_remote.mjs <mcp-url> [callback-port]
//
// Prints one JSON line: the consent page, the browser's response chain (status, origin +
// path), the MCP results, and mcp-remote's stderr lines that matter (never its debug log,
// which may name tokens). Exit status 1 with {"error": …} on failure.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { approve, closeBrowser } from './facade_browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const [mcpUrl, portArg] = process.argv.slice(2);
const TIMEOUT_MS = Number(process.env.FACADE_TIMEOUT_MS ?? 60000);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Lines of a stream, handed to `onLine` as they arrive. */
function lines(stream, onLine) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      onLine(line);
    }
  });
}

function withTimeout(promise, what) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
    }),
  ]);
}

// Lines of mcp-remote's stderr kept for the report: what it did, not what it sent.
const KEEP = [
  /^Using /,
  /callback server running/,
  /Authentication required/,
  /Please authorize/,
  /Browser opened|Could not open a browser/,
  /Auth code received/,
  /Connected to remote server/,
  /Proxy established/,
  /Local STDIO server running/,
  /[Ee]rror/,
];

async function main() {
  const port = portArg ? Number(portArg) : await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'facade-mcp-remote-'));
  // The browser mcp-remote opens: a stub that records that it was asked, and nothing else.
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const stub = path.join(bin, 'xdg-open');
  fs.writeFileSync(stub, `#!/bin/sh\necho opened >> "${path.join(dir, 'opened')}"\nexit 0\n`, { mode: 0o755 });
  const env = {
    ...process.env,
    MCP_REMOTE_CONFIG_DIR: path.join(dir, 'config'),
    BROWSER: stub,
    PATH: `${bin}:${process.env.PATH}`,
  };
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  const proxy = path.join(here, 'node_modules/mcp-remote/dist/proxy.js');
  const child = spawn(process.execPath, [proxy, mcpUrl, String(port), '--host', '127.0.0.1'], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const kept = [];
  let authUrl;
  let sawPlease = false;
  let onAuthUrl;
  const authUrlSeen = new Promise((r) => (onAuthUrl = r));
  let onReady;
  const ready = new Promise((r) => (onReady = r));
  let exitInfo = null;
  const exited = new Promise((r) =>
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      r();
    }),
  );
  lines(child.stderr, (line) => {
    if (sawPlease && !authUrl && /^https?:\/\//.test(line.trim())) {
      authUrl = line.trim();
      onAuthUrl(authUrl);
      return;
    }
    if (line.includes('Please authorize this client by visiting')) sawPlease = true;
    if (line.includes('Proxy established')) onReady();
    if (KEEP.some((k) => k.test(line))) kept.push(line.replace(/https?:\/\/\S*\?\S*/g, (u) => u.split('?')[0]).slice(0, 300));
  });
  const pending = new Map();
  lines(child.stdout, (line) => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (msg.id !== undefined && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    }
  });
  let nextId = 1;
  const request = (method, params) => {
    const id = nextId++;
    const p = new Promise((r) => pending.set(id, r));
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    return withTimeout(p, method);
  };
  const notify = (method, params) =>
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method, ...(params ? { params } : {}) })}\n`);

  const report = { flow: 'facade-mcp-remote', callback_port: port };
  try {
    const url = await withTimeout(
      Promise.race([authUrlSeen, exited.then(() => Promise.reject(new Error(`mcp-remote exited: ${JSON.stringify(exitInfo)}`)))]),
      'the authorization URL on stderr',
    );
    const sent = new URL(url).searchParams;
    report.authorization = {
      endpoint: new URL(url).origin + new URL(url).pathname,
      code_challenge_method: sent.get('code_challenge_method'),
      resource: sent.get('resource'),
      scope: sent.get('scope'),
      redirect_uri: sent.get('redirect_uri'),
    };
    const run = await approve(url, `http://127.0.0.1:${port}/oauth/callback`, { timeoutMs: TIMEOUT_MS });
    report.consent = run.consent;
    report.browser_chain = run.chain;
    report.browser_final = run.final;
    if (!run.consent) throw new Error(`no consent page: ${JSON.stringify(run.error_page ?? run.final)}`);
    await withTimeout(ready, 'mcp-remote to connect ("Proxy established")');
    const init = await request('initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'facade-mcp-remote-driver', version: '1.0.0' },
    });
    if (init.error) throw new Error(`initialize: ${JSON.stringify(init.error)}`);
    report.server_info = init.result?.serverInfo ?? null;
    notify('notifications/initialized');
    const list = await request('tools/list', {});
    if (list.error) throw new Error(`tools/list: ${JSON.stringify(list.error)}`);
    report.tools = list.result.tools.map((t) => t.name).sort();
    const add = await request('tools/call', { name: 'add', arguments: { a: 40, b: 2 } });
    if (add.error) throw new Error(`tools/call: ${JSON.stringify(add.error)}`);
    report.add = add.result?.content?.[0]?.text ?? null;
    report.browser_stub_called = fs.existsSync(path.join(dir, 'opened'));
  } catch (e) {
    report.error = String(e?.stack ?? e);
  } finally {
    child.stdin.end();
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    await closeBrowser().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
  report.stderr = kept;
  console.log(JSON.stringify(report));
  if (report.error) process.exit(1);
}

main().catch(async (e) => {
  await closeBrowser().catch(() => {});
  console.log(JSON.stringify({ flow: 'facade-mcp-remote', error: String(e?.stack ?? e) }));
  process.exit(1);
});
