#!/usr/bin/env node
// Socket.IO emit-echo load: msg/s through python-socketio, with socket.io-client.
//
//   taskset -c 1 node benchmarks/sio_load.js --port 8000 [--clients 50] [--inflight 1]
//       [--size 16] [--warmup 1] [--duration 4] [--path /socket.io/] [--sync 0]
//
// Opens --clients Socket.IO connections to 127.0.0.1:PORT over websocket only
// (no polling, no upgrade), each keeping --inflight `echo` emits in flight: it
// emits a string of --size bytes and emits again when the server's `echo`
// event comes back. After --warmup seconds it counts echoes for --duration
// seconds and prints ONE JSON line:
//   {"ok":true,"msgs_per_s":N,"echoes":N,"seconds":S,"clients":C,"inflight":I,"size":B,
//    "p50_ms":x,"p99_ms":y,"cpu_ms":{"user":u,"system":s}}
// or {"ok":false,"error":"..."} (exit 1). With --sync 1 it also prints
// {"event":"mark","name":"start"|"end"} around the measured window and waits for
// a line "continue" on stdin after each (benchmarks/sio_bench.py samples the
// server's CPU there). Every wait is bounded: connecting by
// 15 s, the whole run by warmup + duration + 30 s.
//
// The apps: benchmarks/apps/sio_ours.py (python-socketio on engineio_asgi) and
// benchmarks/apps/sio_pyengineio.py (python-socketio on python-engineio), e.g.
//   taskset -c 0 .venv/bin/python -m uvicorn --app-dir benchmarks/apps sio_ours:app \
//       --port 8000 --loop uvloop --http httptools --ws websockets --no-access-log --log-level warning
// Pin the server and this generator to different cores (taskset), as above.
"use strict";

const path = require("node:path");
const { performance } = require("node:perf_hooks");
const { parseArgs, marker } = require("./cli");

let sioClient;
try {
  sioClient = require("socket.io-client");
} catch (err) {
  sioClient = require(path.join(__dirname, "..", "node_modules", "socket.io-client"));
}
const { io } = sioClient;

const { args, num } = parseArgs();
const PORT = num("port", 8000);
const CLIENTS = num("clients", 50);
const INFLIGHT = Math.max(1, num("inflight", 1));
const SIZE = num("size", 16);
const WARMUP = num("warmup", 1);
const DURATION = num("duration", 4);
const SIO_PATH = args.path || "/socket.io/";
const SYNC = args.sync === "1";
const URL = `http://127.0.0.1:${PORT}`; // only ever loopback
const CONNECT_TIMEOUT_MS = 15000;

const payload = "x".repeat(SIZE);
const sockets = [];
let measuring = false;
let echoes = 0;
const latencies = [];

function finish(result, code) {
  process.stdout.write(JSON.stringify(result) + "\n");
  for (const s of sockets) s.disconnect();
  setTimeout(() => process.exit(code), 200).unref();
  process.exitCode = code;
}

const hardTimer = setTimeout(() => {
  finish({ ok: false, error: `hard timeout after ${WARMUP + DURATION + 30} s` }, 1);
}, (WARMUP + DURATION + 30) * 1000);

// marks only with --sync 1 (its output is otherwise the result alone)
const syncedMark = SYNC ? marker(true) : null;
async function mark(name) {
  if (syncedMark) await syncedMark(name);
}

function connectOne() {
  return new Promise((resolve, reject) => {
    const socket = io(URL, {
      path: SIO_PATH,
      transports: ["websocket"],
      upgrade: false,
      reconnection: false,
      forceNew: true, // one Engine.IO session per client
      timeout: CONNECT_TIMEOUT_MS,
    });
    sockets.push(socket);
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  });
}

function drive(socket) {
  const sentAt = [];
  socket.on("echo", () => {
    const t0 = sentAt.shift();
    if (measuring) {
      echoes++;
      if (latencies.length < 1000000) latencies.push(performance.now() - t0);
    }
    sentAt.push(performance.now());
    socket.emit("echo", payload);
  });
  for (let i = 0; i < INFLIGHT; i++) {
    sentAt.push(performance.now());
    socket.emit("echo", payload);
  }
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const connectDeadline = new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`connecting ${CLIENTS} clients took over 15 s`)), CONNECT_TIMEOUT_MS).unref(),
  );
  await Promise.race([Promise.all(Array.from({ length: CLIENTS }, connectOne)), connectDeadline]);
  for (const s of sockets) {
    s.on("disconnect", (reason) => {
      if (!finishedRun) finish({ ok: false, error: `a client was disconnected: ${reason}` }, 1);
    });
    drive(s);
  }
  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  await mark("start");
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  measuring = true;
  await new Promise((r) => setTimeout(r, DURATION * 1000));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await mark("end");
  finishedRun = true;
  latencies.sort((a, b) => a - b);
  clearTimeout(hardTimer);
  finish(
    {
      ok: true,
      msgs_per_s: Math.round(echoes / seconds),
      echoes,
      seconds: Number(seconds.toFixed(3)),
      clients: CLIENTS,
      inflight: INFLIGHT,
      size: SIZE,
      p50_ms: Number((percentile(latencies, 50) || 0).toFixed(3)),
      p99_ms: Number((percentile(latencies, 99) || 0).toFixed(3)),
      cpu_ms: { user: Math.round(cpu.user / 1000), system: Math.round(cpu.system / 1000) },
    },
    0,
  );
}

let finishedRun = false;
main().catch((err) => {
  clearTimeout(hardTimer);
  finish({ ok: false, error: String(err && err.message ? err.message : err) }, 1);
});
