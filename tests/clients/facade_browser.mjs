// The browser step of the sign-in façade (issue 19), shared by the façade drivers: a real
// headless Chromium (Debian's `chromium`, driven by playwright-core) opens an authorization
// URL of the edge, finds the consent page, clicks Approve (`<button name="action"
// value="approve">`, src/oauth/consent.rs), follows the identity provider (the dev IdP
// approves its test user by itself) and the façade's callback, and stops when the browser
// reaches the client's redirect URI.
//
// As a module: `approve(url, redirectPrefix, options)`; `startLoopback(path)` runs the tiny
// http server on 127.0.0.1 that plays the native client's redirect URI.
// As a program (for facade_py.py):
//
//   node facade_browser.mjs <authorization-url> <redirect-prefix> [deny]
//
// prints one JSON line with what the browser saw (never a code, state or token: URLs are
// reported without their query).

import http from 'node:http';
import { chromium } from 'playwright-core';

/** `origin + pathname` of a URL: what is safe to report. */
export function bare(u) {
  try {
    const x = new URL(u);
    return x.origin + x.pathname;
  } catch {
    return '<not a URL>';
  }
}

/**
 * A loopback http server playing a native app's redirect URI. Resolves to
 * `{ port, url, next(): Promise<{path, params}>, close() }`; `next()` waits for the next
 * request to `path` and gives its query parameters (the caller must not print them).
 */
export function startLoopback(path = '/callback') {
  const waiting = [];
  const arrived = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://127.0.0.1');
    if (u.pathname !== path) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>signed in</title><p>You can close this window.</p>');
    const got = { path: u.pathname, params: Object.fromEntries(u.searchParams) };
    const w = waiting.shift();
    if (w) w(got);
    else arrived.push(got);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const port = server.address().port;
      resolve({
        port,
        url: `http://127.0.0.1:${port}${path}`,
        next: () =>
          arrived.length ? Promise.resolve(arrived.shift()) : new Promise((r) => waiting.push(r)),
        close: () => server.close(),
      });
    }),
  );
}

let browserPromise;

/** One Chromium for the whole run. */
export function browser() {
  browserPromise ??= chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  return browserPromise;
}

export async function closeBrowser() {
  if (browserPromise) {
    const b = await browserPromise;
    browserPromise = undefined;
    await b.close();
  }
}

/**
 * Opens `url` in a fresh browser context, approves (or denies) on the consent page and
 * waits until the browser is sent to a URL starting with `redirectPrefix`. Returns what the
 * consent page looked like and the chain of responses (status, origin + path).
 */
export async function approve(url, redirectPrefix, { deny = false, timeoutMs = 30000 } = {}) {
  const b = await browser();
  const context = await b.newContext();
  const chain = [];
  context.on('response', (r) => {
    chain.push({ status: r.status(), url: bare(r.url()), method: r.request().method() });
  });
  const page = await context.newPage();
  try {
    const first = await page.goto(url, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
    const headers = first ? await first.allHeaders() : {};
    const out = {
      consent: null,
      chain,
    };
    const button = page.locator(`button[name="action"][value="${deny ? 'deny' : 'approve'}"]`);
    if ((await button.count()) > 0) {
      out.consent = {
        status: first?.status() ?? null,
        title: await page.title(),
        x_frame_options: headers['x-frame-options'] ?? null,
        content_security_policy: headers['content-security-policy'] ?? null,
        set_cookie: headers['set-cookie'] ? headers['set-cookie'].split('\n').map((c) => c.split('=')[0]) : [],
        text: (await page.locator('body').innerText()).slice(0, 2000),
        buttons: await page.locator('form button').evaluateAll((bs) =>
          bs.map((x) => ({ name: x.name, value: x.value, text: x.textContent })),
        ),
      };
      try {
        await Promise.all([
          page.waitForURL((u) => u.href.startsWith(redirectPrefix), { timeout: timeoutMs }),
          button.click(),
        ]);
      } catch (e) {
        // Where the browser stopped, and what that page says (pages carry no secrets).
        const text = await page.locator('body').innerText().catch(() => '');
        const last = chain.filter((c) => c.url === bare(page.url())).pop();
        throw new Error(
          `after ${deny ? 'Deny' : 'Approve'} the browser stopped at ${bare(page.url())} ` +
            `(HTTP ${last?.status ?? '?'}): ${text.slice(0, 500)} — chain ${JSON.stringify(chain)}; ${e.message.split('\n')[0]}`,
        );
      }
    } else if (!page.url().startsWith(redirectPrefix)) {
      // No consent page (mode `remember`) and not yet at the redirect: an error page, or
      // a redirect chain still under way.
      try {
        await page.waitForURL((u) => u.href.startsWith(redirectPrefix), { timeout: 5000 });
      } catch {
        out.error_page = {
          status: first?.status() ?? null,
          url: bare(page.url()),
          text: (await page.locator('body').innerText()).slice(0, 1000),
        };
      }
    }
    out.final = bare(page.url());
    return out;
  } finally {
    await context.close();
  }
}

// As a program.
if (import.meta.url === `file://${process.argv[1]}`) {
  const [url, prefix, mode] = process.argv.slice(2);
  approve(url, prefix, { deny: mode === 'deny' })
    .then((r) => {
      console.log(JSON.stringify(r));
      return closeBrowser();
    })
    .catch(async (e) => {
      console.log(JSON.stringify({ error: String(e?.stack ?? e) }));
      await closeBrowser().catch(() => {});
      process.exit(1);
    });
}
