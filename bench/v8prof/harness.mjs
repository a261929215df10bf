// Runs the filter module in Node's V8 behind a fake proxy-wasm host and replays one request
// over and over: context create, request headers, response headers, delete — the calls
// Envoy makes into the module. With `node --cpu-prof` (make profile-v8) this gives a profile
// by Wasm function, which Envoy's own V8 cannot: only the module's code is real here, the
// host calls are JavaScript stand-ins, so compare functions of the module, not totals with
// Envoy.
//
//   node harness.mjs <module.wasm> <plugin config.json> <token file> [iterations] [warm|401|body|cold]
//
// `cold` is row (e1)'s request: the token file holds one token per line and each request sends
// the next one, so that every request misses the token cache (give more tokens than the cache
// holds: `token_cache.max_entries`, 1,024 by default) and pays a whole verification.
// `body` is row (h)'s request: a tools/call POST with the token, held at its headers, then its
// whole body in one callback (the plugin configuration needs an `mcp` rule on /mcp).
import fs from "node:fs";
import crypto from "node:crypto";

const [, , modulePath, configPath, tokenPath, iterationsArg, mode = "warm"] = process.argv;
if (!modulePath || !configPath || !tokenPath) {
  console.error("usage: node harness.mjs <module.wasm> <config.json> <token file> [iterations] [warm|401|body|cold]");
  process.exit(2);
}
const iterations = Number(iterationsArg || 200000);
const config = fs.readFileSync(configPath);
const tokens = fs.readFileSync(tokenPath, "utf8").split("\n").map((t) => t.trim()).filter(Boolean);
const token = tokens[0];

let exports_;
const bytes = () => new Uint8Array(exports_.memory.buffer);
const view = () => new DataView(exports_.memory.buffer);
const text = (ptr, len) => Buffer.from(bytes().subarray(ptr, ptr + len)).toString();

// Hands `data` to the module the way Envoy does: memory from proxy_on_memory_allocate,
// address and size written to the out-parameters.
function handOver(data, ptrOut, sizeOut) {
  const ptr = data.length ? exports_.proxy_on_memory_allocate(data.length) : 0;
  bytes().set(data, ptr);
  view().setUint32(ptrOut, ptr, true);
  view().setUint32(sizeOut, data.length, true);
}

// The proxy-wasm serialized header map: count, (name length, value length) per pair, then
// each name and value followed by a NUL.
function serialize(pairs) {
  const parts = [Buffer.alloc(4)];
  parts[0].writeUInt32LE(pairs.length);
  for (const [k, v] of pairs) {
    const sizes = Buffer.alloc(8);
    sizes.writeUInt32LE(Buffer.byteLength(k), 0);
    sizes.writeUInt32LE(Buffer.byteLength(v), 4);
    parts.push(sizes);
  }
  for (const [k, v] of pairs) parts.push(Buffer.from(k), Buffer.alloc(1), Buffer.from(v), Buffer.alloc(1));
  return Buffer.concat(parts);
}

// What wrk's requests look like once Envoy's codec and router have seen them.
const headers = [
  [":authority", "127.0.0.1:19800"], [":path", "/mcp"], [":method", "GET"], [":scheme", "http"],
  ["user-agent", "wrk"], ["x-forwarded-proto", "http"],
  ["x-request-id", "0b0f3c4e-8a0f-4b4e-9d0e-1c2b3a4d5e6f"],
];
const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "add", arguments: { a: 1, b: 2 } } }));
if (mode === "warm" || mode === "body" || mode === "cold") headers.splice(4, 0, ["authorization", `Bearer ${token}`]);
else if (mode !== "401") throw new Error(`unknown mode ${mode}`);
if (mode === "body") {
  headers[2][1] = "POST";
  headers.push(["content-type", "application/json"], ["accept", "application/json, text/event-stream"],
    ["content-length", String(body.length)]);
}
let serialized = serialize(headers);
// Row (e1): one serialized header map per token, the request's Authorization changed.
const coldMaps = mode !== "cold" ? [] : tokens.map((t) => serialize(headers.map(([k, v]) => [k, k === "authorization" ? `Bearer ${t}` : v])));
if (mode === "cold" && coldMaps.length < 2048) throw new Error(`cold needs more tokens than the cache holds: ${coldMaps.length} in ${tokenPath}`);

const counts = { removed: 0, added: 0, localResponses: 0, logs: 0 };
const OK = 0, NOT_FOUND = 1;
const env = {
  proxy_log: (level, ptr, len) => { counts.logs++; if (level >= 3) console.error(text(ptr, len)); return OK; },
  proxy_get_log_level: (out) => { view().setUint32(out, 2, true); return OK; },
  proxy_get_buffer_bytes: (type, start, max, ptrOut, sizeOut) => {
    if (type === 0 && mode === "body") { // 0: the request body
      handOver(body.subarray(start, start + max), ptrOut, sizeOut);
      return OK;
    }
    if (type !== 7) return NOT_FOUND; // 7: plugin configuration
    handOver(config, ptrOut, sizeOut);
    return OK;
  },
  proxy_get_header_map_pairs: (type, ptrOut, sizeOut) => {
    handOver(type === 0 ? serialized : serialize([]), ptrOut, sizeOut);
    return OK;
  },
  proxy_get_header_map_value: (type, kPtr, kLen, ptrOut, sizeOut) => {
    const name = text(kPtr, kLen);
    const found = type === 0 && headers.find(([k]) => k === name);
    if (!found) return NOT_FOUND;
    handOver(Buffer.from(found[1]), ptrOut, sizeOut);
    return OK;
  },
  proxy_remove_header_map_value: () => { counts.removed++; return OK; },
  proxy_add_header_map_value: () => { counts.added++; return OK; },
  proxy_replace_header_map_value: () => { counts.added++; return OK; },
  proxy_set_header_map_pairs: () => OK,
  proxy_get_current_time_nanoseconds: (out) => {
    view().setBigUint64(out, BigInt(Date.now()) * 1000000n, true);
    return OK;
  },
  proxy_define_metric: (type, ptr, len, idOut) => { view().setUint32(idOut, 1, true); return OK; },
  proxy_increment_metric: () => OK,
  proxy_set_tick_period_milliseconds: () => OK,
  proxy_get_shared_data: () => NOT_FOUND,
  proxy_set_shared_data: () => OK,
  proxy_set_effective_context: () => OK,
  proxy_continue_stream: () => OK,
  proxy_close_stream: () => OK,
  proxy_send_local_response: () => { counts.localResponses++; return OK; },
  proxy_get_property: () => NOT_FOUND,
  proxy_set_property: () => OK,
  proxy_get_status: () => NOT_FOUND,
  proxy_http_call: () => NOT_FOUND,
  proxy_done: () => OK,
  proxy_set_buffer_bytes: () => OK,
  proxy_grpc_cancel: () => OK,
  proxy_grpc_close: () => OK,
  proxy_grpc_send: () => OK,
  proxy_dequeue_shared_queue: () => NOT_FOUND,
  proxy_register_shared_queue: () => OK,
};
const wasi = {
  random_get: (ptr, len) => { crypto.randomFillSync(bytes().subarray(ptr, ptr + len)); return 0; },
  environ_get: () => 0,
  environ_sizes_get: (count, size) => { view().setUint32(count, 0, true); view().setUint32(size, 0, true); return 0; },
  fd_write: (fd, iovs, n, written) => {
    let total = 0;
    for (let i = 0; i < n; i++) {
      const ptr = view().getUint32(iovs + 8 * i, true), len = view().getUint32(iovs + 8 * i + 4, true);
      process.stderr.write(text(ptr, len));
      total += len;
    }
    view().setUint32(written, total, true);
    return 0;
  },
  proc_exit: (code) => { throw new Error(`proc_exit(${code})`); },
};

const module = new WebAssembly.Module(fs.readFileSync(modulePath));
exports_ = new WebAssembly.Instance(module, { env, wasi_snapshot_preview1: wasi }).exports;
exports_._initialize?.();
const ROOT = 1;
exports_.proxy_on_context_create(ROOT, 0);
if (!exports_.proxy_on_vm_start(ROOT, 0)) throw new Error("proxy_on_vm_start refused");
if (!exports_.proxy_on_configure(ROOT, config.length)) throw new Error("proxy_on_configure refused the configuration");

let next = ROOT + 1;
function request() {
  const id = next++;
  if (mode === "cold") serialized = coldMaps[id % coldMaps.length];
  exports_.proxy_on_context_create(id, ROOT);
  let action = exports_.proxy_on_request_headers(id, headers.length, mode === "body" ? 0 : 1);
  if (mode === "body") {
    if (action !== 1) throw new Error(`a body request was not held at its headers: action ${action}`);
    action = exports_.proxy_on_request_body(id, body.length, 1);
  }
  exports_.proxy_on_response_headers(id, 3, 0);
  exports_.proxy_on_delete(id);
  return action;
}

const action = request();
const want = mode !== "401" ? { action: 0, localResponses: 0 } : { action: 1, localResponses: 1 };
if (action !== want.action || counts.localResponses !== want.localResponses) {
  throw new Error(`the first ${mode} request was not handled as expected: action ${action}, ${counts.localResponses} local responses`);
}
for (let i = 0; i < (mode === "cold" ? 3000 : 20000); i++) request(); // tier up to TurboFan
const start = process.hrtime.bigint();
for (let i = 0; i < iterations; i++) request();
const ns = Number(process.hrtime.bigint() - start) / iterations;
console.log(`${mode}: ${iterations} requests, ${ns.toFixed(0)} ns per request in Node ${process.versions.node} (V8 ${process.versions.v8}), fake host included`);
