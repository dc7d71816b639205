#!/usr/bin/env node
// Socket.IO fan-out load: python-socketio's `emit` to a room of N clients, through a real server.
//
//   taskset -c 1 node benchmarks/sio_fanout.js --port 8000 [--sessions 1000] [--binary 0]
//       [--size 16] [--warmup 1] [--duration 4] [--min-rounds 3] [--concurrency 200]
//       [--path /socket.io/] [--sync 0] [--count K]
//
// Opens --sessions Socket.IO connections over websocket only (Engine.IO v4 and
// Socket.IO v5 framing written here on `ws`: 10,000 socket.io-client instances
// would cost the generator more than the server). The app (benchmarks/apps/
// _sio_echo.py) puts every connection in one room on connect and, on a `fanout`
// event, emits `news` with the same data to the room. Client 0 emits `fanout`;
// when all N clients have the `news` event the next round starts (one round in
// flight). The measured window runs from the end of a round for --duration
// seconds and at least --min-rounds rounds, to the end of a round, so the
// server's CPU over it is that of whole rounds. --binary 1 sends bytes, so every delivery is a header text frame and
// one attachment frame.
//
// With --count K it runs exactly K rounds right after connecting and prints only
// the result (benchmarks/sio_instructions.py counts the server's instructions).
//
// It prints one JSON object per line, as load.js does:
//   {"event":"mark","name":"ready"|"start"|"end"}   (with --sync 1 it waits for
//                                                     a line "continue" after each)
//   {"event":"result","rounds":R,"deliveries":D,"seconds":S,"rate":rounds/s,
//    "deliveries_per_s":..,"p50_ms":..,"p99_ms":..,"gen_cpu_s":..}
//   {"event":"error","error":"..."}  (exit 2)
// Every wait is bounded: each connection by 15 s, the run by --time-limit.
'use strict';

const { parseArgs, emit, marker, openMany } = require('./cli');
const { performance } = require('perf_hooks');
const WebSocket = require('ws');

const { args, num } = parseArgs();
const PORT = num('port', 8000);
const SESSIONS = num('sessions', 1000);
const BINARY = args.binary === '1';
const SIZE = num('size', 16);
const WARMUP = num('warmup', 1);
const DURATION = num('duration', 4);
const MIN_ROUNDS = Math.max(1, num('min-rounds', 3)); // measured rounds at least, however long they take
const COUNT = num('count', 0); // if set: exactly this many rounds, no warm-up, then exit (for callgrind)
const CONCURRENCY = Math.max(1, num('concurrency', 200));
const SIO_PATH = args.path || '/socket.io/';
const SYNC = args.sync === '1';
const TIME_LIMIT = num('time-limit', WARMUP + DURATION + SESSIONS / 50 + 120);
const CONNECT_TIMEOUT_MS = 15000;
const URL = `ws://127.0.0.1:${PORT}${SIO_PATH}?EIO=4&transport=websocket`; // only ever loopback
const WS_OPTS = { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: CONNECT_TIMEOUT_MS };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d) => Math.round(x * 10 ** d) / 10 ** d;
const sockets = [];

function fail(msg) {
  emit({ event: 'error', error: String(msg) });
  for (const ws of sockets) ws.terminate();
  process.exit(2);
}
setTimeout(() => fail(`time limit of ${TIME_LIMIT}s exceeded`), TIME_LIMIT * 1000).unref();

const mark = marker(SYNC);

// One Socket.IO client on the default namespace; resolves once the server's
// CONNECT ("40{...}") came, i.e. after the app's connect handler joined the room.
// onNews() is called once per `news` event delivered (its attachment, if binary).
function openSio(onNews) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(URL, WS_OPTS);
    sockets.push(ws);
    let connected = false;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('socket.io connect timed out'));
    }, CONNECT_TIMEOUT_MS);
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        if (BINARY) onNews(); // the attachment: the event is complete
        return;
      }
      const c = data[0];
      if (c === 0x34) {
        const t = data[1];
        if (t === 0x32 /* 42 EVENT */ || t === 0x35 /* 45 BINARY_EVENT */) {
          if (!BINARY) onNews();
        } else if (t === 0x30 && !connected) {
          connected = true;
          clearTimeout(timer);
          resolve(ws);
        } else if (t === 0x34) {
          reject(new Error(`connect refused: ${data}`));
        }
      } else if (c === 0x32) ws.send('3'); // ping -> pong
      else if (c === 0x30) ws.send('40'); // Engine.IO open -> Socket.IO CONNECT
      else if (c === 0x31) fail('the server closed a session');
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      if (!connected) reject(err);
    });
    ws.on('close', () => {
      if (connected && !finished) fail('a connection closed during the run');
    });
  });
}

let finished = false;

async function main() {
  const payload = 'x'.repeat(SIZE);
  const attachment = Buffer.alloc(SIZE, 0x78);
  let received = 0;
  let t0 = 0;
  let measuring = false;
  let rounds = 0;
  let atBoundary = null; // called (instead of the next trigger) when the round in flight completes
  const samples = [];
  const onNews = () => {
    if (++received !== SESSIONS) return;
    if (measuring) {
      rounds++;
      if (samples.length < 1000000) samples.push(performance.now() - t0);
    }
    if (atBoundary) {
      const f = atBoundary;
      atBoundary = null;
      f();
    } else trigger();
  };
  const boundary = () => new Promise((r) => (atBoundary = r));
  const tOpen = performance.now();
  const conns = await openMany(SESSIONS, CONCURRENCY, () => openSio(onNews));
  await mark('ready', { sessions: SESSIONS, open_seconds: round((performance.now() - tOpen) / 1000, 2) });
  const trigger = () => {
    received = 0;
    t0 = performance.now();
    if (BINARY) {
      conns[0].send('451-["fanout",{"_placeholder":true,"num":0}]');
      conns[0].send(attachment);
    } else {
      conns[0].send(`42["fanout","${payload}"]`);
    }
  };
  if (COUNT > 0) {
    measuring = true;
    for (let i = 0; i < COUNT; i++) await new Promise((r) => { atBoundary = r; trigger(); });
    finished = true;
    emit({ event: 'result', sessions: SESSIONS, binary: BINARY, rounds, deliveries: rounds * SESSIONS });
    for (const ws of conns) ws.terminate();
    return;
  }
  trigger();
  await sleep(WARMUP * 1000);
  // the window starts and ends between rounds: its CPU is that of whole rounds
  await boundary();
  await mark('start');
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  measuring = true;
  trigger();
  await sleep(DURATION * 1000);
  while (rounds < MIN_ROUNDS) await boundary().then(trigger);
  await boundary();
  measuring = false;
  const seconds = (performance.now() - w0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await mark('end');
  finished = true;
  samples.sort((a, b) => a - b);
  const pct = (p) =>
    samples.length ? round(samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))], 3) : null;
  emit({
    event: 'result',
    sessions: SESSIONS,
    binary: BINARY,
    size: SIZE,
    rounds,
    deliveries: rounds * SESSIONS,
    seconds: round(seconds, 3),
    rate: round(rounds / seconds, 2),
    deliveries_per_s: round((rounds * SESSIONS) / seconds, 1),
    p50_ms: pct(50),
    p99_ms: pct(99),
    gen_cpu_s: round((cpu.user + cpu.system) / 1e6, 3),
  });
  for (const ws of conns) ws.terminate();
}

main().then(
  () => process.exit(0),
  (err) => fail(err && err.stack ? err.stack.split('\n').slice(0, 3).join(' | ') : err)
);
