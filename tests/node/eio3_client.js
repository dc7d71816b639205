#!/usr/bin/env node
// Engine.IO v3 test client built on the official `engine.io-client` 3.5.x (the npm alias
// `engine.io-client-v3`), for servers started with allow_eio3=True.
//
// Usage:
//   node tests/node/eio3_client.js URL SCENARIO [--option=value ...]
//
// It prints exactly ONE JSON line on stdout; exit code 0 means the scenario succeeded
// (1 = scenario failure, 2 = hard timeout, 3 = bad usage).
//
// Common options:
//   --transports=polling|websocket|polling,websocket   (default polling,websocket)
//   --upgrade=true|false   allow the polling -> websocket upgrade (default true)
//   --wait-upgrade=true    wait for the upgrade before finishing (fail on upgradeError)
//   --xhr2=true            give the client an XMLHttpRequest that takes binary (XHR2), as a
//                          browser's does: polling then carries binary in the XHR2 binary
//                          payload. Without it the client in Node has no XHR2 and sends
//                          b64=1 (binary as base64 inside text payloads).
//   --force-base64=true    the client's forceBase64 option (b64=1 on every transport)
//   --timeout=MS           hard timeout for the whole scenario (default 15000)
//
// Scenarios:
//   echo         --text=N --binary=M   sends N text (with € and an emoji) and M binary
//                messages, interleaved, and expects them echoed back in order.
//   ping         --duration=MS         stays connected MS ms, counting the client's pings
//                and the server's pongs, then proves the session alive with one echo.
//   silent       stops pinging (and stops its own ping-timeout timer), and waits for the
//                server to close the session; reports when.
//   handshake    only connects: reports whether the session opened, or the error.
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");
const path = require("node:path");
const { parseArgs } = require("node:util");

const CLIENT = "engine.io-client-v3";
const clientDir = path.dirname(require.resolve(`${CLIENT}/package.json`));

let finished = false;
const startedAt = Date.now();
const elapsedMs = () => Date.now() - startedAt;

function emit(result, exitCode) {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exitCode = exitCode;
  setTimeout(() => process.exit(exitCode), 500).unref();
}

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      transports: { type: "string", default: "polling,websocket" },
      upgrade: { type: "string", default: "true" },
      "wait-upgrade": { type: "string", default: "false" },
      xhr2: { type: "string", default: "false" },
      "force-base64": { type: "string", default: "false" },
      timeout: { type: "string", default: "15000" },
      text: { type: "string", default: "5" },
      binary: { type: "string", default: "5" },
      duration: { type: "string", default: "3000" },
    },
  });
  if (args.positionals.length !== 2) throw new Error("usage: eio3_client.js URL SCENARIO [--option=value ...]");
} catch (err) {
  emit({ ok: false, error: `bad usage: ${err.message}` }, 3);
  return;
}
const [url, scenario] = args.positionals;
const opts = args.values;
const flag = (name) => opts[name] === "true";

// --- an XMLHttpRequest with XHR2's binary responses, on node:http --------------------------
// engine.io-client 3.x reads `responseType` to decide whether it may ask for binary, sets it
// to "arraybuffer" when the response is application/octet-stream, and then reads `response`.
const xhrSeen = {};
class XHR2 {
  constructor() {
    this.readyState = 0;
    this.responseType = "";
    this.status = 0;
    this.headers = {};
    this.responseHeaders = {};
  }
  open(method, uri) {
    this.method = method;
    this.uri = uri;
    this.readyState = 1;
  }
  setRequestHeader(name, value) {
    this.headers[name] = value;
  }
  getResponseHeader(name) {
    const value = this.responseHeaders[name.toLowerCase()];
    return value === undefined ? null : value;
  }
  change(state) {
    this.readyState = state;
    if (this.onreadystatechange) this.onreadystatechange();
  }
  send(data) {
    const body = data == null ? null : Buffer.isBuffer(data) ? data : Buffer.from(String(data), "utf8");
    const headers = { ...this.headers };
    if (body) headers["Content-Length"] = body.length;
    this.req = http.request(this.uri, { method: this.method, headers, agent: false }, (res) => {
      this.status = res.statusCode;
      this.responseHeaders = res.headers;
      // what went each way, e.g. "GET <- application/octet-stream", "POST -> application/octet-stream"
      const seen = this.method === "GET" ? `GET <- ${res.headers["content-type"]}` : `POST -> ${headers["Content-type"]}`;
      xhrSeen[seen] = (xhrSeen[seen] || 0) + 1;
      this.change(2);
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const all = Buffer.concat(chunks);
        this.response = this.responseType === "arraybuffer" ? all : all.toString("utf8");
        this.responseText = this.responseType === "arraybuffer" ? "" : all.toString("utf8");
        this.change(4);
      });
    });
    this.req.on("error", () => {
      this.status = 0;
      this.change(4);
    });
    if (body) this.req.write(body);
    this.req.end();
  }
  abort() {
    if (this.req) this.req.destroy();
  }
}

if (flag("xhr2")) {
  // installed before the client loads: it tests for XHR2 once, at load time
  const target = require.resolve("xmlhttprequest-ssl", { paths: [path.join(clientDir, "lib", "transports")] });
  require.cache[target] = { id: target, filename: target, loaded: true, exports: XHR2 };
}
const eio = require(CLIENT);

// --- the session ---------------------------------------------------------------------
const state = {
  scenario,
  sid: null,
  handshake: null,
  opened: false,
  upgraded: false,
  upgradeError: null,
  initialTransport: null,
  pings: 0,
  pongs: 0,
  closed: false,
  closeReason: null,
  closeDescription: null,
  errors: [],
  requests: [],
};

const describe = (v) => {
  if (v == null) return null;
  if (typeof v === "string" || typeof v === "number") return v;
  if (v instanceof Error) return { message: v.message, description: describe(v.description), type: v.type };
  return String(v);
};

const transports = opts.transports.split(",").filter(Boolean);
const socket = new eio.Socket(url, {
  transports,
  upgrade: opts.upgrade === "true",
  forceBase64: flag("force-base64"),
  rememberUpgrade: false,
});
const report = (extra) => ({
  ...state,
  transport: socket.transport ? socket.transport.name : null,
  supportsBinary: socket.transport ? !!socket.transport.supportsBinary : null,
  xhr: xhrSeen,
  elapsedMs: elapsedMs(),
  ...extra,
});
const fail = (message, extra) => {
  emit(report({ ok: false, error: message, ...extra }), 1);
  try {
    socket.close();
  } catch (e) {}
};
const hardTimer = setTimeout(() => {
  emit(report({ ok: false, error: `timeout after ${opts.timeout} ms`, timedOut: true }), 2);
  try {
    socket.close();
  } catch (e) {}
}, Number(opts.timeout));
hardTimer.unref();

socket.on("handshake", (data) => {
  state.handshake = data;
  state.sid = data.sid;
});
socket.on("open", () => {
  state.opened = true;
  state.initialTransport = socket.transport.name;
});
socket.on("upgrade", () => {
  state.upgraded = true;
});
socket.on("upgradeError", (err) => {
  state.upgradeError = describe(err);
});
socket.on("ping", () => state.pings++);
socket.on("pong", () => state.pongs++);
socket.on("error", (err) => state.errors.push(describe(err)));
socket.on("close", (reason, desc) => {
  state.closed = true;
  state.closeReason = reason;
  state.closeDescription = describe(desc);
  state.closedAtMs = elapsedMs();
});

const when = (event) => new Promise((resolve) => socket.once(event, resolve));
async function whenOpen() {
  if (state.opened) return;
  const first = await Promise.race([when("open").then(() => "open"), when("close").then(() => "close")]);
  if (first !== "open") throw new Error(`closed before open: ${state.closeReason} ${JSON.stringify(state.closeDescription)}`);
}
async function whenUpgraded() {
  if (state.upgraded) return;
  const first = await Promise.race([
    when("upgrade").then(() => "upgrade"),
    when("upgradeError").then(() => "upgradeError"),
    when("close").then(() => "close"),
  ]);
  if (first !== "upgrade") throw new Error(`no upgrade: ${first} ${JSON.stringify(state.upgradeError)}`);
}

function makeText(seq) {
  return `t:${seq}:héllo-€-😀-${"x".repeat(seq % 7)}`;
}
function makeBinary(seq) {
  const buf = crypto.createHash("sha256").update(`seed-${seq}`).digest();
  buf.writeUInt32BE(seq, 0);
  buf[4] = 0x00;
  buf[5] = 0xff; // not UTF-8
  return buf;
}

async function echo() {
  const nText = Number(opts.text);
  const nBinary = Number(opts.binary);
  const plan = [];
  for (let seq = 0, t = 0, b = 0; t < nText || b < nBinary; seq++) {
    if (t < nText && (b >= nBinary || seq % 2 === 0)) {
      plan.push(makeText(seq));
      t++;
    } else {
      plan.push(makeBinary(seq));
      b++;
    }
  }
  const received = [];
  const byTransport = {};
  const done = new Promise((resolve, reject) => {
    socket.on("message", (data) => {
      const i = received.length;
      const want = plan[i];
      byTransport[socket.transport.name] = (byTransport[socket.transport.name] || 0) + 1;
      if (typeof want === "string") {
        if (data !== want) return reject(new Error(`message #${i}: got ${JSON.stringify(String(data)).slice(0, 80)}`));
      } else {
        const got = Buffer.isBuffer(data) ? data : data instanceof ArrayBuffer ? Buffer.from(data) : null;
        if (!got || !got.equals(want)) return reject(new Error(`message #${i}: binary differs or is text: ${typeof data}`));
      }
      received.push(data);
      if (received.length === plan.length) resolve();
    });
    socket.on("close", (reason) => reject(new Error(`closed after ${received.length}/${plan.length}: ${reason}`)));
  });
  done.catch(() => {});
  await whenOpen();
  if (flag("wait-upgrade")) await whenUpgraded();
  for (const item of plan) socket.send(item);
  await done;
  const finalTransport = socket.transport.name;
  socket.close();
  return { echoed: received.length, text: nText, binary: nBinary, byTransport, finalTransport };
}

async function ping() {
  const duration = Number(opts.duration);
  await whenOpen();
  if (flag("wait-upgrade")) await whenUpgraded();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, duration);
    socket.once("close", (reason) => {
      clearTimeout(timer);
      reject(new Error(`closed after ${elapsedMs()} ms: ${reason}`));
    });
  });
  const probe = `alive-${Date.now()}`;
  await new Promise((resolve, reject) => {
    socket.on("message", (data) => data === probe && resolve());
    socket.once("close", (reason) => reject(new Error(`closed during the probe: ${reason}`)));
    socket.send(probe);
  });
  const finalTransport = socket.transport.name;
  socket.close();
  return { durationMs: duration, finalTransport };
}

async function silent() {
  // no pings, and no ping timeout of the client's own: only the server can end it
  socket.ping = () => {};
  socket.onHeartbeat = () => {};
  await whenOpen();
  if (flag("wait-upgrade")) await whenUpgraded();
  const openedAt = elapsedMs();
  if (!state.closed) await when("close");
  return { openedAtMs: openedAt, closeAfterOpenMs: state.closedAtMs - openedAt };
}

async function handshake() {
  const first = await Promise.race([
    when("open").then(() => "open"),
    when("close").then(() => "close"),
    when("error").then(() => "error"),
  ]);
  const opened = first === "open";
  try {
    socket.close();
  } catch (e) {}
  return { first, opened };
}

const SCENARIOS = { echo, ping, silent, handshake };
process.on("uncaughtException", (err) => fail(`uncaught exception: ${err && err.stack ? err.stack : err}`));
process.on("unhandledRejection", (err) => fail(`unhandled rejection: ${err && err.stack ? err.stack : err}`));

(async () => {
  const run = SCENARIOS[scenario];
  if (!run) {
    emit({ ok: false, error: `bad usage: unknown scenario ${scenario}` }, 3);
    return;
  }
  try {
    const result = await run();
    emit(report({ ok: true, ...result }), 0);
  } catch (err) {
    fail(err && err.message ? err.message : String(err));
  }
})();
