#!/usr/bin/env node
// Engine.IO test client built on the official `engine.io-client` (v6).
//
// Usage:
//   node tests/node/eio_client.js URL SCENARIO [--option=value ...]
//
// It connects to URL (e.g. http://127.0.0.1:8000), runs SCENARIO and prints
// exactly ONE JSON line on stdout. Exit code 0 means the scenario succeeded;
// any failure (including the hard timeout) prints {"ok": false, "error": ...}
// and exits non-zero (1 = scenario failure, 2 = hard timeout, 3 = bad usage).
//
// Common options:
//   --transports=polling|websocket|polling,websocket   (default polling,websocket)
//   --upgrade=true|false     allow polling -> websocket upgrade (default true)
//   --path=/engine.io        Engine.IO path (default /engine.io)
//   --timeout=MS             hard timeout for the whole scenario (default 15000)
//   --wait-upgrade=true      wait until the upgrade event fired (fail on upgradeError):
//                            echo/ping: before finishing; wait-close/close: before
//                            sending anything
//
// Scenarios:
//   echo        --text=N --binary=M --size=BYTES --send-on=open|upgrade
//               Sends N text and M binary messages (interleaved, each carrying a
//               sequence number) and expects them echoed back in order, with text
//               as strings and binary as Buffer/ArrayBuffer with identical bytes.
//   wait-close  --send=TEXT (repeatable, e.g. --send=close-me) --no-pong=true
//               Connects, sends the given messages, and waits until the session is
//               closed by the server. Reports the close reason seen by the client.
//               --no-pong suppresses the client's pong replies so that the server
//               has to close the session with a ping timeout.
//   close       --message=TEXT
//               Connects, sends one message, then closes from the client side.
//   ping        --duration=MS
//               Stays connected for MS milliseconds, counting the 'ping' events,
//               then checks the session is still alive with one echo round trip.
"use strict";

const crypto = require("node:crypto");
const path = require("node:path");
const { parseArgs } = require("node:util");

let eioClient;
try {
  eioClient = require("engine.io-client");
} catch (err) {
  // Fall back to the repository's node_modules when run from elsewhere.
  eioClient = require(path.join(__dirname, "..", "..", "node_modules", "engine.io-client"));
}
const { Socket } = eioClient;

// ---------------------------------------------------------------- utilities

const startedAt = Date.now();
let finished = false;

function elapsedMs() {
  return Date.now() - startedAt;
}

function emit(result, exitCode) {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exitCode = exitCode;
  clearTimeout(hardTimer);
  // Give pending I/O (for instance the POST carrying a client close packet) a
  // chance to complete, but never linger: force the exit after a short grace.
  setTimeout(() => process.exit(exitCode), 1000).unref();
}

function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

function describe(value) {
  if (value === undefined || value === null) return null;
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  if (typeof value === "object") {
    const out = {};
    if (value.description !== undefined) out.description = describe(value.description);
    if (value.message !== undefined) out.message = String(value.message);
    if (value.context && typeof value.context === "object") {
      if (value.context.code !== undefined) out.code = value.context.code;
      if (value.context.reason !== undefined) out.closeReason = String(value.context.reason);
      if (value.context.status !== undefined) out.status = value.context.status;
    }
    if (Object.keys(out).length) return out;
    try {
      return JSON.stringify(value);
    } catch (e) {
      return String(value);
    }
  }
  return String(value);
}

function parseBool(value, name) {
  if (value === undefined) return undefined;
  if (["true", "1", "yes"].includes(value)) return true;
  if (["false", "0", "no"].includes(value)) return false;
  throw new UsageError(`--${name} must be true or false, got ${value}`);
}

function parseIntOpt(value, name, dflt) {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer`);
  return n;
}

class UsageError extends Error {}

// ---------------------------------------------------------------- arguments

let args;
let hardTimer = null;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      transports: { type: "string", default: "polling,websocket" },
      upgrade: { type: "string" },
      path: { type: "string", default: "/engine.io" },
      timeout: { type: "string" },
      "wait-upgrade": { type: "string" },
      text: { type: "string" },
      binary: { type: "string" },
      size: { type: "string" },
      "send-on": { type: "string" },
      send: { type: "string", multiple: true },
      "no-pong": { type: "string" },
      message: { type: "string" },
      duration: { type: "string" },
    },
  });
  if (args.positionals.length !== 2) {
    throw new UsageError("usage: eio_client.js URL SCENARIO [--option=value ...]");
  }
} catch (err) {
  emit({ ok: false, error: `bad usage: ${err.message}` }, 3);
  return;
}

const [url, scenario] = args.positionals;
const opts = args.values;
let config;
try {
  const transports = opts.transports.split(",").map((t) => t.trim()).filter(Boolean);
  for (const t of transports) {
    if (t !== "polling" && t !== "websocket") throw new UsageError(`unknown transport ${t}`);
  }
  if (!transports.length) throw new UsageError("--transports is empty");
  const upgrade = parseBool(opts.upgrade, "upgrade");
  config = {
    transports,
    upgrade: upgrade === undefined ? true : upgrade,
    path: opts.path,
    timeout: parseIntOpt(opts.timeout, "timeout", 15000),
    waitUpgrade: parseBool(opts["wait-upgrade"], "wait-upgrade") || false,
  };
  if (config.waitUpgrade && !(config.upgrade && transports[0] === "polling" && transports.includes("websocket"))) {
    throw new UsageError("--wait-upgrade needs --transports=polling,websocket and --upgrade=true");
  }
} catch (err) {
  emit({ ok: false, error: `bad usage: ${err.message}` }, 3);
  return;
}

// ---------------------------------------------------------------- session

// State shared by all scenarios, included in every report.
const state = {
  scenario,
  url,
  transports: config.transports,
  sid: null,
  handshake: null,
  opened: false,
  upgraded: false,
  upgradeError: null,
  initialTransport: null,
  transport: null,
  pings: 0,
  closed: false,
  closeReason: null,
  closeDescription: null,
  errors: [],
  progress: null, // scenario-specific progress, useful when a scenario times out
};

function report(extra) {
  return {
    ...state,
    transport: socket ? (socket.transport ? socket.transport.name : state.transport) : null,
    elapsedMs: elapsedMs(),
    ...extra,
  };
}

function fail(message, extra) {
  emit(report({ ok: false, error: message, ...extra }), 1);
  closeQuietly();
}

function succeed(extra) {
  emit(report({ ok: true, ...extra }), 0);
}

function closeQuietly() {
  try {
    if (socket && socket.readyState !== "closed") socket.close();
  } catch (e) {
    // ignore: we are already reporting
  }
}

hardTimer = setTimeout(() => {
  emit(report({ ok: false, error: `timeout after ${config.timeout} ms`, timedOut: true }), 2);
  closeQuietly();
}, config.timeout);

const socket = new Socket(url, {
  path: config.path,
  transports: config.transports,
  upgrade: config.upgrade,
  // Fail fast rather than fall back silently to another transport.
  tryAllTransports: false,
  rememberUpgrade: false,
});

socket.on("handshake", (data) => {
  state.handshake = data;
  state.sid = data.sid;
});
socket.on("open", () => {
  state.opened = true;
  state.initialTransport = socket.transport.name;
  state.transport = socket.transport.name;
});
socket.on("upgrade", (transport) => {
  state.upgraded = true;
  state.transport = transport.name;
});
socket.on("upgradeError", (err) => {
  state.upgradeError = describe(err);
});
socket.on("ping", () => {
  state.pings += 1;
});
socket.on("error", (err) => {
  state.errors.push(describe(err));
});
socket.on("close", (reason, description) => {
  state.closed = true;
  state.closeReason = reason;
  state.closeDescription = describe(description);
  state.closedAtMs = elapsedMs();
});

// Resolves when the socket is open, rejects when it closes first.
function whenOpen() {
  return new Promise((resolve, reject) => {
    if (state.opened) return resolve();
    const onOpen = () => {
      socket.off("close", onClose);
      resolve();
    };
    const onClose = (reason) => {
      socket.off("open", onOpen);
      reject(new Error(`closed before open: ${reason} ${JSON.stringify(state.closeDescription)}`));
    };
    socket.once("open", onOpen);
    socket.once("close", onClose);
  });
}

// Resolves once the upgrade completed; rejects on upgradeError or close.
function whenUpgraded() {
  return new Promise((resolve, reject) => {
    if (state.upgraded) return resolve();
    const cleanup = () => {
      socket.off("upgrade", onUpgrade);
      socket.off("upgradeError", onError);
      socket.off("close", onClose);
    };
    const onUpgrade = () => {
      cleanup();
      resolve();
    };
    const onError = (err) => {
      cleanup();
      reject(new Error(`upgrade failed: ${describe(err) && JSON.stringify(describe(err))}`));
    };
    const onClose = (reason) => {
      cleanup();
      reject(new Error(`closed while waiting for upgrade: ${reason}`));
    };
    socket.on("upgrade", onUpgrade);
    socket.on("upgradeError", onError);
    socket.on("close", onClose);
  });
}

function whenClosed() {
  return new Promise((resolve) => {
    if (state.closed) return resolve();
    socket.once("close", () => resolve());
  });
}

// ---------------------------------------------------------------- messages

// Text messages: "t:<seq>:<payload>" with non-ASCII characters to exercise UTF-8.
// Binary messages: 4-byte big-endian sequence number followed by deterministic
// pseudo-random bytes (including 0x1e and bytes that are not valid UTF-8).
function makeText(seq, size) {
  const base = `t:${seq}:héllo-€-😀-`;
  let body = base;
  while (body.length < size) body += String.fromCharCode(0x41 + ((seq + body.length) % 26));
  return body;
}

function makeBinary(seq, size) {
  const buf = Buffer.alloc(Math.max(size, 8));
  buf.writeUInt32BE(seq, 0);
  const stream = crypto.createHash("sha256").update(`seed-${seq}`).digest();
  for (let i = 4; i < buf.length; i++) buf[i] = stream[i % stream.length] ^ (i & 0xff);
  buf[4] = 0x1e; // record separator inside binary data must survive base64 framing
  buf[5] = 0xff; // not valid UTF-8
  return buf;
}

function buildPlan(nText, nBinary, size) {
  const plan = [];
  let t = 0;
  let b = 0;
  let seq = 0;
  while (t < nText || b < nBinary) {
    // Interleave: alternate while both kinds remain.
    const pickText = t < nText && (b >= nBinary || seq % 2 === 0);
    if (pickText) {
      plan.push({ seq, kind: "text", data: makeText(seq, size) });
      t++;
    } else {
      plan.push({ seq, kind: "binary", data: makeBinary(seq, size) });
      b++;
    }
    seq++;
  }
  return plan;
}

function digestUpdate(hash, kind, bytes) {
  const header = Buffer.alloc(5);
  header.write(kind === "text" ? "T" : "B", 0, "latin1");
  header.writeUInt32BE(bytes.length, 1);
  hash.update(header);
  hash.update(bytes);
}

// ---------------------------------------------------------------- scenarios

async function scenarioEcho() {
  const nText = parseIntOpt(opts.text, "text", 5);
  const nBinary = parseIntOpt(opts.binary, "binary", 5);
  const size = parseIntOpt(opts.size, "size", 32);
  const sendOn = opts["send-on"] || "open";
  if (!["open", "upgrade"].includes(sendOn)) throw new UsageError("--send-on must be open or upgrade");
  if (sendOn === "upgrade" && !config.waitUpgrade) throw new UsageError("--send-on=upgrade needs --wait-upgrade=true");

  const plan = buildPlan(nText, nBinary, size);
  const expectedHash = crypto.createHash("sha256");
  for (const item of plan) {
    digestUpdate(expectedHash, item.kind, item.kind === "text" ? Buffer.from(item.data, "utf8") : item.data);
  }
  const receivedHash = crypto.createHash("sha256");
  const received = { text: 0, binary: 0, total: 0, bytes: 0 };
  const receivedTransports = {};
  state.progress = { expected: plan.length, received };

  let resolveAll;
  let rejectAll;
  const allEchoed = new Promise((resolve, reject) => {
    resolveAll = resolve;
    rejectAll = reject;
  });
  // Rejections can happen before we await the promise: mark it handled.
  allEchoed.catch(() => {});
  if (plan.length === 0) resolveAll();

  socket.on("message", (data) => {
    const index = received.total;
    const expected = plan[index];
    const tname = socket.transport ? socket.transport.name : "?";
    receivedTransports[tname] = (receivedTransports[tname] || 0) + 1;
    if (!expected) {
      rejectAll(new Error(`unexpected extra message #${index}: ${describe(typeof data === "string" ? data : "<binary>")}`));
      return;
    }
    if (expected.kind === "text") {
      if (typeof data !== "string") {
        rejectAll(new Error(`message #${index} (seq ${expected.seq}): expected text, got ${Object.prototype.toString.call(data)}`));
        return;
      }
      if (data !== expected.data) {
        rejectAll(new Error(`message #${index} (seq ${expected.seq}): text differs: got ${JSON.stringify(data.slice(0, 80))}`));
        return;
      }
      digestUpdate(receivedHash, "text", Buffer.from(data, "utf8"));
      received.text++;
      received.bytes += Buffer.byteLength(data, "utf8");
    } else {
      const buf = toBuffer(data);
      if (buf === null) {
        rejectAll(new Error(`message #${index} (seq ${expected.seq}): expected binary, got ${typeof data}: ${JSON.stringify(String(data).slice(0, 80))}`));
        return;
      }
      if (!buf.equals(expected.data)) {
        const gotSeq = buf.length >= 4 ? buf.readUInt32BE(0) : null;
        rejectAll(new Error(`message #${index} (seq ${expected.seq}): binary differs (got ${buf.length} bytes, seq ${gotSeq})`));
        return;
      }
      digestUpdate(receivedHash, "binary", buf);
      received.binary++;
      received.bytes += buf.length;
    }
    received.total++;
    if (received.total === plan.length) resolveAll();
  });
  socket.on("close", (reason) => rejectAll(new Error(`closed after ${received.total}/${plan.length} echoes: ${reason}`)));

  await whenOpen();
  if (sendOn === "upgrade") await whenUpgraded();
  for (const item of plan) socket.send(item.data);
  await allEchoed;
  if (config.waitUpgrade) await whenUpgraded();
  const sentHash = expectedHash.digest("hex");
  const gotHash = receivedHash.digest("hex");
  if (sentHash !== gotHash) throw new Error(`hash mismatch ${gotHash} != ${sentHash}`);
  const result = {
    sent: { text: nText, binary: nBinary, total: plan.length, size },
    received,
    receivedTransports,
    hash: gotHash,
    expectedHash: sentHash,
    inOrder: true,
    finalTransport: socket.transport.name,
  };
  socket.close();
  return result;
}

async function scenarioWaitClose() {
  const toSend = opts.send || [];
  const noPong = parseBool(opts["no-pong"], "no-pong") || false;
  if (noPong) {
    // Swallow the client's pong replies (private API of engine.io-client 6.x) so the
    // server never sees a heartbeat answer and must time the session out.
    const original = socket._sendPacket.bind(socket);
    socket._sendPacket = (type, ...rest) => {
      if (type === "pong") return undefined;
      return original(type, ...rest);
    };
  }
  const messages = [];
  socket.on("message", (data) => {
    messages.push(typeof data === "string" ? data : `<binary ${toBuffer(data).length}>`);
  });
  await whenOpen();
  if (config.waitUpgrade) await whenUpgraded();
  const openedAt = elapsedMs();
  for (const m of toSend) socket.send(m);
  await whenClosed();
  return {
    sentMessages: toSend,
    receivedMessages: messages.slice(0, 20),
    closeReason: state.closeReason,
    closeDescription: state.closeDescription,
    openedAtMs: openedAt,
    closeAfterOpenMs: state.closedAtMs - openedAt,
    noPong,
    pings: state.pings,
  };
}

async function scenarioClose() {
  const message = opts.message === undefined ? "bye" : opts.message;
  const messages = [];
  socket.on("message", (data) => messages.push(typeof data === "string" ? data : "<binary>"));
  await whenOpen();
  if (config.waitUpgrade) await whenUpgraded();
  const closeTransport = socket.transport.name;
  socket.send(message);
  socket.close();
  await whenClosed();
  return {
    sentMessage: message,
    receivedMessages: messages,
    closeReason: state.closeReason,
    closeDescription: state.closeDescription,
    closeTransport,
  };
}

async function scenarioPing() {
  const duration = parseIntOpt(opts.duration, "duration", 3000);
  if (duration + 2000 > config.timeout) {
    throw new UsageError(`--duration (${duration}) must be at least 2000 ms below --timeout (${config.timeout})`);
  }
  const pingTimes = [];
  socket.on("ping", () => pingTimes.push(elapsedMs()));
  await whenOpen();
  const openedAt = elapsedMs();
  // The scenario is "stay connected for `duration` ms"; closing early fails it.
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off("close", onClose);
      resolve();
    }, duration);
    const onClose = (reason) => {
      clearTimeout(timer);
      reject(new Error(`session closed after ${elapsedMs() - openedAt} ms: ${reason} ${JSON.stringify(state.closeDescription)}`));
    };
    socket.once("close", onClose);
  });
  if (config.waitUpgrade) await whenUpgraded();
  // Prove the session is alive with one echo round trip.
  const probe = `alive-${Date.now()}`;
  await new Promise((resolve, reject) => {
    const onMessage = (data) => {
      if (data === probe) {
        cleanup();
        resolve();
      }
    };
    const onClose = (reason) => {
      cleanup();
      reject(new Error(`closed during liveness probe: ${reason}`));
    };
    const cleanup = () => {
      socket.off("message", onMessage);
      socket.off("close", onClose);
    };
    socket.on("message", onMessage);
    socket.on("close", onClose);
    socket.send(probe);
  });
  const intervals = [];
  for (let i = 1; i < pingTimes.length; i++) intervals.push(pingTimes[i] - pingTimes[i - 1]);
  const result = {
    durationMs: duration,
    pings: state.pings,
    pingIntervalsMs: intervals,
    survived: !state.closed && socket.readyState === "open",
    finalTransport: socket.transport.name,
  };
  socket.close();
  return result;
}

// Anything unexpected still ends with one JSON line and a non-zero exit code.
process.on("unhandledRejection", (err) => {
  fail(`unhandled rejection: ${err && err.stack ? err.stack : err}`);
});
process.on("uncaughtException", (err) => {
  fail(`uncaught exception: ${err && err.stack ? err.stack : err}`);
});

const SCENARIOS = {
  echo: scenarioEcho,
  "wait-close": scenarioWaitClose,
  close: scenarioClose,
  ping: scenarioPing,
};

(async () => {
  const run = SCENARIOS[scenario];
  if (!run) {
    emit({ ok: false, error: `bad usage: unknown scenario ${scenario}; known: ${Object.keys(SCENARIOS).join(", ")}` }, 3);
    closeQuietly();
    return;
  }
  try {
    const result = await run();
    succeed(result);
  } catch (err) {
    if (err instanceof UsageError) {
      emit(report({ ok: false, error: `bad usage: ${err.message}` }), 3);
      closeQuietly();
    } else {
      fail(err && err.message ? err.message : String(err));
    }
  }
})();
