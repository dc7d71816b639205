#!/usr/bin/env node
// Socket.IO test client built on the official `socket.io-client` (v4).
//
// Usage:
//   node tests/node/sio_client.js URL --script=JSON [--option=value ...]
//
// Runs the steps of --script in order on one Manager (so every namespace is
// multiplexed on one Engine.IO session, as a browser would) and prints exactly
// ONE JSON line on stdout:
//   {"ok": true|false, "error": ..., "results": [one per step],
//    "events": {ns: [[event, ...args]]}, "disconnects": {ns: reason},
//    "transport": "polling"|"websocket"|null, "elapsed_ms": N}
// Exit code: 0 = every step succeeded, 1 = a step failed, 2 = hard timeout,
// 3 = bad usage. Every wait is bounded: each step by its own "timeout" (ms,
// default --step-timeout) and the whole run by --timeout.
//
// Binary values travel through JSON as {"$bin": "<base64>"}, both in the
// script (arguments to emit) and in the report (anything received).
//
// Options:
//   --transports=polling|websocket|polling,websocket   (default polling,websocket)
//   --upgrade=true|false   allow the polling -> websocket upgrade (default true)
//   --path=/socket.io/     Socket.IO path
//   --query=JSON           extra query parameters on every Engine.IO request
//   --timeout=MS           hard timeout of the whole run (default 15000)
//   --step-timeout=MS      default bound of one step (default 5000)
//
// Steps ({"op": ..., fields}; "ns" defaults to "/"):
//   connect         {ns, auth, expect: "connect"|"error"}  -> {id} or {error, data}
//   emit            {ns, event, args: [], ack: bool}       -> {ack: [...]} | {sent: true}
//   wait            {ns, event, count: 1}  until `count` such events arrived (since the
//                   start) -> {events: [[args...]]}
//   wait_transport  {name: "websocket"}    until the Engine.IO transport is `name`
//   transport       -> {transport}
//   disconnect      {ns}                   client-side disconnect of that namespace
//   wait_disconnect {ns}                   until that namespace is disconnected -> {reason}
//   exit_abruptly   print the report and exit at once, closing nothing (the server
//                   sees the connection drop, or, on polling, the pings stop)
// Events the server emits with an acknowledgement (e.g. `call()`) are answered with
// {"client got": [args]}.
"use strict";

const path = require("node:path");
const { parseArgs } = require("node:util");

let sioClient;
try {
  sioClient = require("socket.io-client");
} catch (err) {
  sioClient = require(path.join(__dirname, "..", "..", "node_modules", "socket.io-client"));
}
const { Manager } = sioClient;

const startedAt = Date.now();
let finished = false;
let manager = null;
const sockets = new Map(); // ns -> Socket
const events = {}; // ns -> [[event, ...args]]
const disconnects = {}; // ns -> reason
const connectErrors = new Map(); // ns -> the connect_error of its last attempt
const results = [];
const waiters = new Set(); // functions re-checked on every incoming event

function report(extra, exitCode) {
  if (finished) return;
  finished = true;
  let transport = null;
  try {
    transport = manager && manager.engine && manager.engine.transport ? manager.engine.transport.name : null;
  } catch (err) {
    transport = null;
  }
  const out = Object.assign(
    { results, events, disconnects, transport, elapsed_ms: Date.now() - startedAt },
    extra,
  );
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exitCode = exitCode;
  clearTimeout(hardTimer);
}

function usage(message) {
  process.stdout.write(JSON.stringify({ ok: false, error: "usage: " + message }) + "\n");
  process.exit(3);
}

// ------------------------------------------------------------ binary <-> JSON

function toJSONValue(value) {
  if (value === undefined) return null;
  if (Buffer.isBuffer(value)) return { $bin: value.toString("base64") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("base64") };
  if (ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
  }
  if (Array.isArray(value)) return value.map(toJSONValue);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJSONValue(v);
    return out;
  }
  return value;
}

function fromJSONValue(value) {
  if (Array.isArray(value)) return value.map(fromJSONValue);
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$bin") return Buffer.from(value.$bin, "base64");
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = fromJSONValue(v);
    return out;
  }
  return value;
}

// ------------------------------------------------------------------ helpers

function notify() {
  for (const check of Array.from(waiters)) check();
}

// Resolve when `predicate()` holds, reject after `ms`. Checked now, on every
// Socket.IO event, and every 20 ms (for state no event announces, such as the
// Engine.IO transport after an upgrade).
function until(predicate, ms, what) {
  return new Promise((resolve, reject) => {
    let timer = null;
    let ticker = null;
    const done = () => {
      waiters.delete(check);
      clearTimeout(timer);
      clearInterval(ticker);
    };
    const check = () => {
      let value;
      try {
        value = predicate();
      } catch (err) {
        done();
        reject(err);
        return;
      }
      if (value) {
        done();
        resolve(value);
      }
    };
    timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    ticker = setInterval(check, 20);
    waiters.add(check);
    check();
  });
}

function socketFor(ns) {
  const socket = sockets.get(ns);
  if (!socket) throw new Error(`namespace ${ns} was never connected (add a connect step)`);
  return socket;
}

function openSocket(ns, auth) {
  const socket = manager.socket(ns, auth === undefined ? {} : { auth });
  events[ns] = events[ns] || [];
  socket.onAny((event, ...args) => {
    let ack = null;
    if (args.length && typeof args[args.length - 1] === "function") ack = args.pop();
    events[ns].push([event, ...args.map(toJSONValue)]);
    if (ack) ack({ "client got": args });
    notify();
  });
  socket.on("connect", notify);
  socket.on("connect_error", (err) => {
    connectErrors.set(ns, err);
    notify();
  });
  socket.on("disconnect", (reason) => {
    disconnects[ns] = reason;
    notify();
  });
  sockets.set(ns, socket);
  return socket;
}

// ------------------------------------------------------------------- steps

async function runStep(step, defaultTimeout) {
  const ns = step.ns || "/";
  const ms = step.timeout || defaultTimeout;
  switch (step.op) {
    case "connect": {
      const socket = openSocket(ns, step.auth);
      await until(() => socket.connected || connectErrors.has(ns), ms, `connect to ${ns}`);
      const error = socket.connected ? null : connectErrors.get(ns);
      const expect = step.expect || "connect";
      if (error) {
        if (expect !== "error") throw new Error(`connect to ${ns} refused: ${error.message}`);
        return { error: error.message, data: toJSONValue(error.data === undefined ? null : error.data) };
      }
      if (expect !== "connect") throw new Error(`connect to ${ns} succeeded, expected a refusal`);
      return { id: socket.id };
    }
    case "emit": {
      const socket = socketFor(ns);
      const args = fromJSONValue(step.args || []);
      if (step.ack) {
        // every argument of the acknowledgement, not just the first (emitWithAck)
        const ack = await new Promise((resolve, reject) => {
          socket.timeout(ms).emit(step.event, ...args, (err, ...ackArgs) => {
            if (err) reject(new Error(`no acknowledgement for ${step.event}: ${err.message}`));
            else resolve(ackArgs);
          });
        });
        return { ack: toJSONValue(ack) };
      }
      socket.emit(step.event, ...args);
      return { sent: true };
    }
    case "wait": {
      const count = step.count || 1;
      const list = () => (events[ns] || []).filter((e) => e[0] === step.event);
      await until(() => list().length >= count, ms, `${count} ${step.event} event(s) on ${ns}`);
      return { events: list().map((e) => e.slice(1)) };
    }
    case "wait_transport": {
      const name = step.name || "websocket";
      await until(
        () => manager.engine && manager.engine.transport && manager.engine.transport.name === name,
        ms,
        `transport ${name}`,
      );
      return { transport: name };
    }
    case "transport":
      return { transport: manager.engine && manager.engine.transport ? manager.engine.transport.name : null };
    case "disconnect":
      socketFor(ns).disconnect();
      return { disconnected: true };
    case "wait_disconnect": {
      await until(() => disconnects[ns] !== undefined, ms, `disconnect of ${ns}`);
      return { reason: disconnects[ns] };
    }
    case "exit_abruptly":
      results.push({ exiting: true });
      report({ ok: true }, 0);
      process.exit(0);
      break;
    default:
      throw new Error(`unknown op ${JSON.stringify(step.op)}`);
  }
  return {};
}

// -------------------------------------------------------------------- main

let hardTimer = null;

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        script: { type: "string" },
        transports: { type: "string", default: "polling,websocket" },
        upgrade: { type: "string", default: "true" },
        path: { type: "string", default: "/socket.io/" },
        query: { type: "string", default: "{}" },
        timeout: { type: "string", default: "15000" },
        "step-timeout": { type: "string", default: "5000" },
      },
    });
  } catch (err) {
    usage(err.message);
  }
  const [url] = parsed.positionals;
  if (!url || !parsed.values.script) usage("node sio_client.js URL --script=JSON");
  let script;
  let query;
  try {
    script = JSON.parse(parsed.values.script);
    query = JSON.parse(parsed.values.query);
  } catch (err) {
    usage("--script and --query must be JSON: " + err.message);
  }
  const hardMs = Number(parsed.values.timeout);
  const stepMs = Number(parsed.values["step-timeout"]);
  hardTimer = setTimeout(() => {
    report({ ok: false, error: `hard timeout after ${hardMs} ms` }, 2);
    process.exit(2);
  }, hardMs);

  manager = new Manager(url, {
    path: parsed.values.path,
    transports: parsed.values.transports.split(","),
    upgrade: parsed.values.upgrade === "true",
    query,
    reconnection: false,
    timeout: stepMs,
    autoConnect: true,
  });

  for (const step of script) {
    try {
      results.push(await runStep(step, stepMs));
    } catch (err) {
      results.push({ failed: String(err && err.message ? err.message : err) });
      report({ ok: false, error: `step ${results.length - 1} (${step.op}): ${err.message || err}` }, 1);
      break;
    }
  }
  report({ ok: true }, 0);
  // Let the last packets (a client DISCONNECT, the close POST) leave, then go.
  for (const socket of sockets.values()) {
    if (socket.connected) socket.disconnect();
  }
  setTimeout(() => process.exit(process.exitCode || 0), 300).unref();
}

main().catch((err) => {
  report({ ok: false, error: String(err && err.stack ? err.stack : err) }, 1);
  process.exit(1);
});
