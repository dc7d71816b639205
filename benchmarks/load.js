#!/usr/bin/env node
// Engine.IO v4 load generator for benchmarks/run.py (see README.md).
//
// One scenario per process; it prints one JSON object per line on stdout:
//   {"event":"mark","name":"start"|"end"|...}  phase changes (run.py samples the
//                                              server's CPU and RSS on each)
//   {"event":"result", ...}                    the figures, with the generator's
//                                              own CPU use (process.cpuUsage)
//   {"event":"error","error":"..."}            the scenario could not be run
// With --sync 1 it waits after each mark for a line "continue" on stdin, so the
// harness samples the server exactly at the phase boundary.
//
// Websockets use `ws` (permessage-deflate off unless --deflate 1); polling uses
// a raw `net` socket HTTP/1.1 keep-alive client (Node's http client is slower
// than the fastest servers under test).
'use strict';

const net = require('net');
const { parseArgs, emit, marker, openMany } = require('./cli');
const { performance } = require('perf_hooks');
const WebSocket = require('ws');

// ---------------------------------------------------------------- arguments
const { args, num } = parseArgs();
const SCENARIO = args.scenario;
const HOST = '127.0.0.1'; // only ever loopback
const PORT = num('port', 8000);
const EIO_PATH = args.path || '/engine.io/';
const DURATION = num('duration', 4); // seconds measured
const COUNT = num('count', 0); // if set: measure until this many operations completed, not for DURATION
const WARMUP = num('warmup', 1); // seconds run before measuring
const CLIENTS = num('clients', 50);
const INFLIGHT = Math.max(1, num('inflight', 1));
// under load: 0 = closed loop (each client sends its next message when the echo is
// back: saturation); R > 0 = open loop, each client sends R messages a second on a
// fixed schedule and a round trip is timed from the *scheduled* send
const ECHO_RATE = num('echo-rate', 0);
const PACE_TICK_MS = 1; // how often the paced senders look at their schedule
const SIZE = num('size', 16); // message payload bytes
const DEFLATE = args.deflate === '1' || args.deflate === 'true';
const SESSIONS = num('sessions', 1000); // fan-out and idle
const CONCURRENCY = Math.max(1, num('concurrency', 100)); // parallel connects
const WINDOW = num('window', 10); // idle: seconds held while measured
const SETTLE = num('settle', 2); // idle: seconds after opening before measuring
const SYNC = args.sync === '1';
const TIME_LIMIT = num('time-limit', WARMUP + DURATION + WINDOW + 120);
const CONNECT_TIMEOUT_MS = 15000;
const CHURN_RATE = num('churn-rate', 0); // under load: sessions opened and closed per second
const CHURN_MAX = 500; // churn sessions in flight at most
const STORM_CONCURRENCY = Math.max(1, num('storm-concurrency', 500)); // reconnects in flight at most
const STORM_ATTEMPTS = 5; // per client and storm
const MAX_SAMPLES = 4000000;
// latency-under-load and churn: a JSON file with each round trip's scheduled send and its
// time, and the times the held sessions got their pings (ms from the window's start)
const TRACE = args.trace || '';

const PAYLOAD = '4' + 'x'.repeat(SIZE);
const WS_URL = `ws://${HOST}:${PORT}${EIO_PATH}?EIO=4&transport=websocket`;
const POLL_PATH = `${EIO_PATH}?EIO=4&transport=polling`;
const WS_OPTS = { perMessageDeflate: DEFLATE, skipUTF8Validation: true, handshakeTimeout: CONNECT_TIMEOUT_MS };

function fail(msg) {
  emit({ event: 'error', scenario: SCENARIO, error: String(msg) });
  process.exit(2);
}

const hardLimit = setTimeout(() => fail(`time limit of ${TIME_LIMIT}s exceeded`), TIME_LIMIT * 1000);
hardLimit.unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// stdin "continue" lines acknowledge marks (only with --sync 1)
const mark = marker(SYNC);

// ---------------------------------------------------------------- measuring
class Meter {
  constructor() {
    this.samples = new Float64Array(MAX_SAMPLES);
    this.at = TRACE ? new Float64Array(MAX_SAMPLES) : null; // --trace: each sample's scheduled send
    this.n = 0;
    this.count = 0;
    this.measuring = false;
  }

  async start() {
    await mark('start');
    this.n = 0;
    this.count = 0;
    this.cpu0 = process.cpuUsage();
    this.t0 = performance.now();
    this.measuring = true;
  }

  async stop() {
    this.measuring = false;
    this.seconds = (performance.now() - this.t0) / 1000;
    const cpu = process.cpuUsage(this.cpu0);
    this.genCpu = (cpu.user + cpu.system) / 1e6;
    await mark('end');
  }

  record(ms, at) {
    if (!this.measuring) return;
    this.count++;
    if (this.n < MAX_SAMPLES) {
      if (this.at) this.at[this.n] = at;
      this.samples[this.n++] = ms;
    }
    if (this.count === COUNT && this.reached) this.reached();
  }

  percentile(p) {
    if (!this.n) return null;
    if (!this.sorted) this.sorted = this.samples.subarray(0, this.n).sort();
    const i = Math.min(this.n - 1, Math.floor((p / 100) * this.n));
    return Math.round(this.sorted[i] * 1000) / 1000;
  }

  result(extra) {
    return {
      event: 'result',
      scenario: SCENARIO,
      count: this.count,
      seconds: round(this.seconds, 3),
      rate: round(this.count / this.seconds, 1),
      p50_ms: this.percentile(50),
      p99_ms: this.percentile(99),
      p999_ms: this.percentile(99.9),
      max_ms: this.n ? Math.round(this.sorted[this.n - 1] * 1000) / 1000 : null,
      gen_cpu_s: round(this.genCpu, 3),
      gen_cpu_pct: round((100 * this.genCpu) / this.seconds, 1),
      deflate: DEFLATE,
      size: SIZE,
      ...extra,
    };
  }
}

const round = (x, d) => Math.round(x * 10 ** d) / 10 ** d;

// beforeStop(): called at the window's end while the meter still records
async function measure(meter, beforeStop) {
  await sleep(WARMUP * 1000);
  const reached = COUNT > 0 ? new Promise((r) => (meter.reached = r)) : null;
  await meter.start();
  await (reached || sleep(DURATION * 1000));
  if (beforeStop) beforeStop();
  await meter.stop();
}

// ---------------------------------------------------------------- websocket
// Opens one Engine.IO websocket session; resolves once the open packet came.
// `onMessage(buf)` gets every message packet; pings are answered here.
function openWs(onMessage, url = WS_URL) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, WS_OPTS);
    let opened = false;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('websocket open timed out'));
    }, CONNECT_TIMEOUT_MS);
    ws.on('message', (data) => {
      const c = data[0];
      if (c === 0x34) onMessage(data);
      else if (c === 0x32) ws.send('3');
      else if (c === 0x30 && !opened) {
        opened = true;
        clearTimeout(timer);
        resolve(ws);
      }
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      if (!opened) reject(err);
    });
    ws.on('close', () => {
      ws.closedAt = performance.now();
    });
  });
}

// N clients x K messages in flight each; every echo triggers the next send.
async function wsEcho() {
  const meter = new Meter();
  const echo = await openEchoClients(meter, true);
  await measure(meter);
  echo.stop();
  const closed = echo.clients.filter((c) => c.ws.readyState !== WebSocket.OPEN).length;
  emit(meter.result({ clients: CLIENTS, inflight: INFLIGHT, unit: 'msg/s', closed_by_server: closed }));
  for (const st of echo.clients) st.ws.terminate();
}

// CLIENTS sessions with INFLIGHT messages each in flight, started; stop() ends the sending.
// markConnected: a mark "connected" once all are open, before the first message is sent.
async function openEchoClients(meter, markConnected = false) {
  if (ECHO_RATE > 0) return openPacedClients(meter);
  let running = true;
  const clients = await openMany(CLIENTS, CONCURRENCY, () => {
    const ring = new Float64Array(INFLIGHT);
    const state = { head: 0, tail: 0, ws: null };
    return openWs(() => {
      const now = performance.now();
      meter.record(now - ring[state.head]);
      state.head = (state.head + 1) % INFLIGHT;
      if (running) {
        ring[state.tail] = now;
        state.tail = (state.tail + 1) % INFLIGHT;
        state.ws.send(PAYLOAD);
      }
    }).then((ws) => {
      state.ws = ws;
      state.ring = ring;
      return state;
    });
  });
  if (markConnected) await mark('connected');
  for (const st of clients) {
    for (let k = 0; k < INFLIGHT; k++) {
      st.ring[st.tail] = performance.now();
      st.tail = (st.tail + 1) % INFLIGHT;
      st.ws.send(PAYLOAD);
    }
  }
  return { clients, stop: () => (running = false), outstanding: () => 0 };
}

// Open loop: client i sends its k-th message at t0 + (i / CLIENTS + k) / ECHO_RATE s,
// whether or not the earlier ones came back, and each round trip counts from that
// scheduled time. A server that stalls for 200 ms thus shows 200 ms, 199 ms, ... for
// every message that was due meanwhile, not one slow sample (no coordinated omission);
// a late tick of this generator's own timer counts too, the same for every server.
// Echoes come back in order on a websocket, so each client keeps a FIFO of due times.
async function openPacedClients(meter) {
  const period = 1000 / ECHO_RATE;
  const clients = await openMany(CLIENTS, CONCURRENCY, () => {
    const state = { due: [], head: 0, next: 0, ws: null };
    return openWs(() => {
      if (state.head < state.due.length) {
        const due = state.due[state.head++];
        meter.record(performance.now() - due, due);
      }
      if (state.head > 1024 && state.head * 2 > state.due.length) {
        state.due = state.due.slice(state.head);
        state.head = 0;
      }
    }).then((ws) => {
      state.ws = ws;
      return state;
    });
  });
  const t0 = performance.now();
  clients.forEach((st, i) => (st.next = t0 + (i / clients.length) * period));
  const tick = () => {
    const now = performance.now();
    for (const st of clients) {
      // (bounded: at most one period's worth of sends per client and tick after a stall of this process)
      for (let guard = 0; st.next <= now && guard < 1000; guard++) {
        st.due.push(st.next);
        st.ws.send(PAYLOAD);
        st.next += period;
      }
    }
  };
  const timer = setInterval(tick, PACE_TICK_MS);
  return {
    clients,
    stop: () => clearInterval(timer),
    // the messages sent and not yet back, timed as if they came back now (a stall at the
    // end of the window is not hidden either); called while the meter still records
    outstanding: () => {
      const now = performance.now();
      let n = 0;
      for (const st of clients) {
        for (let k = st.head; k < st.due.length; k++, n++) meter.record(now - st.due[k], st.due[k]);
      }
      return n;
    },
  };
}

// C loops in parallel, each: open a websocket session, wait for the open packet,
// send "1" (Engine.IO close) and a close frame at once (as engine.io-client
// does), wait until the server closed the connection.  A raw-socket client: the
// `ws` client's own handshake cost saturated the generator's core first.
const UPGRADE_REQUEST =
  `GET ${EIO_PATH}?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\n` +
  'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  'Sec-WebSocket-Version: 13\r\n' +
  (DEFLATE ? 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' : '') +
  '\r\n';
// masked (zero key) text frame "1", then a masked close frame with code 1000
const CLOSE_FRAMES = Buffer.from([0x81, 0x81, 0, 0, 0, 0, 0x31, 0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);

function rawWsSession(onDone) {
  const t0 = performance.now();
  const sock = net.connect({ host: HOST, port: PORT });
  sock.setNoDelay(true);
  let buf = null;
  let upgraded = false;
  let opened = false;
  let finished = false;
  const timer = setTimeout(() => sock.destroy(new Error('websocket handshake timed out')), CONNECT_TIMEOUT_MS);
  const done = (err) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    sock.destroy();
    onDone(err, performance.now() - t0);
  };
  sock.on('connect', () => sock.write(UPGRADE_REQUEST));
  sock.on('data', (chunk) => {
    buf = buf ? Buffer.concat([buf, chunk]) : chunk;
    if (!upgraded) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (buf.toString('latin1', 9, 12) !== '101') return done(new Error(`upgrade refused: ${buf.toString('latin1', 0, 12)}`));
      upgraded = true;
      buf = buf.subarray(end + 4);
    }
    // server frames are unmasked: 2, 4 or 10 header bytes
    for (let guard = 0; guard < 1000 && buf.length >= 2; guard++) {
      const opcode = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let head = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        head = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        head = 10;
      }
      if (buf.length < head + len) return;
      buf = buf.subarray(head + len);
      if (opcode === 0x8) return opened ? done(null) : done(new Error('closed before the open packet'));
      if (!opened && (opcode === 0x1 || opcode === 0x2)) {
        opened = true;
        sock.write(CLOSE_FRAMES);
      }
    }
  });
  sock.on('error', (err) => done(err));
  sock.on('close', () => done(opened ? null : new Error('connection closed before the open packet')));
}

async function wsHandshake() {
  const meter = new Meter();
  let running = true;
  let errors = 0;
  const loops = [];
  for (let i = 0; i < CLIENTS; i++) {
    loops.push(
      new Promise((resolve) => {
        const once = () => {
          if (!running) return resolve();
          rawWsSession((err, ms) => {
            if (err) {
              errors++;
              if (errors < 5) emit({ event: 'warning', scenario: SCENARIO, warning: String(err.message || err) });
              setTimeout(once, 10); // back off when the server refuses
            } else {
              meter.record(ms);
              once();
            }
          });
        };
        once();
      })
    );
  }
  await measure(meter);
  running = false;
  await Promise.race([Promise.all(loops), sleep(5000)]);
  emit(meter.result({ clients: CLIENTS, unit: 'handshakes/s', errors }));
}

// N sessions; one of them sends "fanout", the server sends "fanout" to all N;
// when all N got it the next round starts (one round in flight).
async function fanout() {
  const meter = new Meter();
  let running = true;
  let received = 0;
  let t0 = 0;
  let roundsDone = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  const onMessage = () => {
    if (++received === SESSIONS) {
      meter.record(performance.now() - t0);
      roundsDone++;
      if (running) trigger();
      else finish();
    }
  };
  const sessions = await openMany(SESSIONS, CONCURRENCY, () => openWs(onMessage));
  const trigger = () => {
    received = 0;
    t0 = performance.now();
    sessions[0].send('4fanout');
  };
  trigger();
  await measure(meter);
  running = false;
  await Promise.race([finished, sleep(5000)]);
  const res = meter.result({ sessions: SESSIONS, unit: 'fanouts/s' });
  res.deliveries_per_s = round(res.rate * SESSIONS, 1);
  emit(res);
  for (const ws of sessions) ws.terminate();
}

// open N sessions and hold them (answering pings); run.py measures the
// server's RSS per session and its CPU over the window.
async function idle() {
  const warm = Math.min(100, SESSIONS);
  const warmSessions = await openMany(warm, CONCURRENCY, () => openWs(() => {}));
  await Promise.all(
    warmSessions.map(
      (ws) =>
        new Promise((r) => {
          ws.on('close', r);
          ws.close(1000);
          setTimeout(r, 5000);
        })
    )
  );
  await sleep(1000);
  await mark('baseline');
  const t0 = performance.now();
  const sessions = await openMany(SESSIONS, CONCURRENCY, () => openWs(() => {}));
  const openSeconds = (performance.now() - t0) / 1000;
  await mark('ready', { sessions: SESSIONS, open_seconds: round(openSeconds, 2) });
  await sleep(SETTLE * 1000);
  let pings = 0;
  for (const ws of sessions) ws.on('message', (d) => d[0] === 0x32 && pings++);
  await mark('start');
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  await sleep(WINDOW * 1000);
  const seconds = (performance.now() - w0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await mark('end');
  const open = sessions.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  const genCpu = (cpu.user + cpu.system) / 1e6;
  emit({
    event: 'result',
    scenario: SCENARIO,
    sessions: SESSIONS,
    still_open: open,
    pings_answered: pings,
    open_seconds: round(openSeconds, 2),
    seconds: round(seconds, 3),
    gen_cpu_s: round(genCpu, 3),
    gen_cpu_pct: round((100 * genCpu) / seconds, 1),
    deflate: DEFLATE,
    unit: 'sessions',
  });
  for (const ws of sessions) ws.terminate();
}

// ---------------------------------------------------------------- under load
// N idle websocket sessions held open (pings answered) while CLIENTS sessions echo
// one message at a time; with --churn-rate R, R sessions a second also open, echo
// one message and close (as engine.io-client closes: "1", then a close frame).
// The figures are the echo round trips' tail: p50, p99, p99.9, max.
async function latencyUnderLoad() {
  const t0 = performance.now();
  const idleSessions = await openMany(SESSIONS, CONCURRENCY, () => openWs(() => {}));
  const openSeconds = (performance.now() - t0) / 1000;
  let pings = 0;
  const pingTimes = [];
  for (const ws of idleSessions) {
    ws.on('message', (d) => {
      if (d[0] !== 0x32) return;
      pings++;
      if (TRACE) pingTimes.push(performance.now());
    });
  }
  await mark('ready', { sessions: SESSIONS, open_seconds: round(openSeconds, 2) });
  await sleep(SETTLE * 1000);
  const meter = new Meter();
  const echo = await openEchoClients(meter);
  const churn = { inflight: 0, done: 0, errors: 0, skipped: 0, started: 0 };
  let churnTimer = null;
  const c0 = performance.now();
  if (CHURN_RATE > 0) {
    churnTimer = setInterval(() => {
      const due = Math.floor(((performance.now() - c0) / 1000) * CHURN_RATE);
      for (let guard = 0; churn.started + churn.skipped < due && guard < 10000; guard++) {
        if (churn.inflight >= CHURN_MAX) churn.skipped++;
        else churnOne(churn);
      }
    }, 10);
  }
  const pings0 = pings;
  let outstanding = 0;
  await measure(meter, () => (outstanding = echo.outstanding()));
  const pingsInWindow = pings - pings0;
  if (churnTimer) clearInterval(churnTimer);
  const churnSeconds = (performance.now() - c0) / 1000;
  echo.stop();
  const open = idleSessions.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  const closed = echo.clients.filter((c) => c.ws.readyState !== WebSocket.OPEN).length;
  const extra = {
    sessions: SESSIONS,
    clients: CLIENTS,
    unit: 'msg/s',
    still_open: open,
    pings_answered: pingsInWindow,
    open_seconds: round(openSeconds, 2),
    closed_by_server: closed,
    echo_rate: ECHO_RATE, // per client; 0: closed loop (saturation)
    outstanding_at_end: outstanding,
  };
  if (CHURN_RATE > 0) {
    Object.assign(extra, {
      churn_rate: CHURN_RATE,
      churned: churn.done,
      churn_per_s: round(churn.done / churnSeconds, 1),
      churn_errors: churn.errors,
      churn_skipped: churn.skipped,
      errors: churn.errors,
    });
  }
  if (TRACE) writeTrace(meter, pingTimes);
  emit(meter.result(extra));
  for (const st of echo.clients) st.ws.terminate();
  for (const ws of idleSessions) ws.terminate();
}

// --trace: [scheduled send, round trip] per sample and the held sessions' ping arrivals,
// in ms from the window's start (pings from the whole run, so some are negative)
function writeTrace(meter, pingTimes) {
  const t0 = meter.t0;
  const samples = [];
  for (let i = 0; i < meter.n; i++) samples.push([round(meter.at[i] - t0, 3), round(meter.samples[i], 3)]);
  const pings = pingTimes.map((t) => round(t - t0, 3));
  require('fs').writeFileSync(TRACE, JSON.stringify({ window_ms: meter.seconds * 1000, samples, pings }));
}

function churnOne(stats) {
  stats.started++;
  stats.inflight++;
  let finished = false;
  let ws = null;
  const end = (ok) => {
    if (finished) return;
    finished = true;
    stats.inflight--;
    if (ok) stats.done++;
    else stats.errors++;
  };
  const timer = setTimeout(() => {
    if (ws) ws.terminate();
    end(false);
  }, CONNECT_TIMEOUT_MS);
  openWs(() => {
    ws.send('1');
    ws.close(1000);
  }).then(
    (w) => {
      ws = w;
      w.on('close', () => {
        clearTimeout(timer);
        end(true);
      });
      w.send(PAYLOAD);
    },
    () => {
      clearTimeout(timer);
      end(false);
    }
  );
}

// ---------------------------------------------------------------- reconnect storm
// One client as engine.io-client connects: polling handshake, a long poll, a probe
// websocket with the sid ("2probe" -> "3probe"), wait for the poll to end (noop),
// "5" (upgrade) on the websocket; it is back when a message sent on the websocket
// has come back.  Resolves the websocket (pings answered).
function upgradeSession() {
  return new Promise((resolve, reject) => {
    const http = new Http();
    let ws = null;
    let settled = false;
    const timer = setTimeout(() => finish(new Error('reconnect timed out')), CONNECT_TIMEOUT_MS);
    const finish = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      http.destroy();
      if (err) {
        if (ws) ws.terminate();
        reject(err);
      } else resolve(ws);
    };
    let pollDone = false;
    let probed = false;
    let upgraded = false;
    const upgrade = () => {
      if (upgraded || !pollDone || !probed) return;
      upgraded = true;
      ws.send('5');
      ws.send(PAYLOAD);
    };
    http.request('GET', POLL_PATH, null, (err, status, body) => {
      if (err) return finish(err);
      let sid;
      try {
        sid = parseOpen(status, body);
      } catch (e) {
        return finish(e);
      }
      const path = `${POLL_PATH}&sid=${encodeURIComponent(sid)}`;
      let polls = 0;
      const poll = () =>
        http.request('GET', path, null, (err2, status2, body2) => {
          if (settled) return;
          if (err2 || status2 !== 200) return finish(err2 || new Error(`poll ${status2}`));
          if (body2.toString().split('\x1e').some((p) => p === '6')) {
            pollDone = true;
            return upgrade();
          }
          if (++polls < 5) poll();
          else finish(new Error('no noop after 5 polls'));
        });
      poll();
      ws = new WebSocket(`${WS_URL}&sid=${encodeURIComponent(sid)}`, WS_OPTS);
      ws.on('open', () => ws.send('2probe'));
      ws.on('message', (data) => {
        const c = data[0];
        if (c === 0x33 && data.length === 6 && data.toString() === '3probe') {
          probed = true;
          upgrade();
        } else if (c === 0x32) ws.send('3');
        else if (c === 0x34 && upgraded) finish(null);
      });
      ws.on('error', (e) => finish(e));
      ws.on('close', () => finish(new Error('websocket closed during the upgrade')));
    });
  });
}

async function upgradeWithRetries(stats) {
  for (let attempt = 0; attempt < STORM_ATTEMPTS; attempt++) {
    try {
      return await upgradeSession();
    } catch (e) {
      stats.errors++;
      if (stats.errors < 5) emit({ event: 'warning', scenario: SCENARIO, warning: String(e.message || e) });
      await sleep(100 * 2 ** attempt);
    }
  }
  return null;
}

// N sessions connected as engine.io-client connects; then all N dropped at once
// (sockets destroyed) and reconnecting at once (at most --storm-concurrency
// handshakes in flight).  The figures: seconds until all are back, reconnects a
// second, and each client's time from the drop until it was back (p50, p99, max).
async function reconnectStorm() {
  const stats = { errors: 0 };
  const t0 = performance.now();
  let sessions = await openMany(SESSIONS, CONCURRENCY, () => upgradeWithRetries(stats));
  const openSeconds = (performance.now() - t0) / 1000;
  const missing = sessions.filter((ws) => ws === null).length;
  if (missing) throw new Error(`${missing} of ${SESSIONS} sessions could not connect before the storm`);
  await mark('ready', { sessions: SESSIONS, open_seconds: round(openSeconds, 2) });
  await sleep(SETTLE * 1000);
  const meter = new Meter();
  stats.errors = 0;
  await meter.start();
  const drop = performance.now();
  for (const ws of sessions) {
    ws.removeAllListeners('close');
    ws.terminate();
  }
  sessions = await openMany(SESSIONS, STORM_CONCURRENCY, async () => {
    const ws = await upgradeWithRetries(stats);
    if (ws) meter.record(performance.now() - drop);
    return ws;
  });
  await meter.stop();
  const back = sessions.filter((ws) => ws !== null).length;
  const res = meter.result({
    sessions: SESSIONS,
    unit: 'reconnects/s',
    back,
    errors: stats.errors,
    open_seconds: round(openSeconds, 2),
    storm_concurrency: STORM_CONCURRENCY,
  });
  res.recover_s = res.seconds;
  emit(res);
  for (const ws of sessions) if (ws) ws.terminate();
}

// ---------------------------------------------------------------- polling
// A minimal HTTP/1.1 keep-alive client on a raw socket; one request at a time.
class Http {
  constructor() {
    this.sock = null;
    this.buf = null;
    this.cb = null;
    this.pendingWrite = null;
  }

  _connect() {
    const sock = net.connect({ host: HOST, port: PORT });
    sock.setNoDelay(true);
    this.sock = sock;
    this.buf = null;
    sock.on('connect', () => {
      if (this.pendingWrite) {
        sock.write(this.pendingWrite);
        this.pendingWrite = null;
      }
    });
    sock.on('data', (chunk) => {
      this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
      this._parse();
    });
    const gone = (err) => {
      if (this.sock !== sock) return;
      this.sock = null;
      const cb = this.cb;
      this.cb = null;
      if (cb) cb(err || new Error('connection closed'));
    };
    sock.on('error', gone);
    sock.on('close', () => gone(null));
  }

  request(method, path, body, cb) {
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\n`;
    if (body !== null) {
      head += `Content-Type: text/plain;charset=UTF-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    } else head += '\r\n';
    this.cb = cb;
    if (!this.sock) {
      this.pendingWrite = head;
      this._connect();
    } else this.sock.write(head);
  }

  _parse() {
    const buf = this.buf;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = buf.toString('latin1', 0, end);
    const status = parseInt(head.slice(9, 12), 10);
    let length = -1;
    let chunked = false;
    let close = false;
    const lines = head.split('\r\n');
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim().toLowerCase();
      if (name === 'content-length') length = parseInt(value, 10);
      else if (name === 'transfer-encoding') chunked = value.includes('chunked');
      else if (name === 'connection') close = value === 'close';
    }
    let body;
    let rest;
    const start = end + 4;
    if (chunked) {
      const parts = [];
      let pos = start;
      for (let guard = 0; guard < 100000; guard++) {
        const eol = buf.indexOf('\r\n', pos);
        if (eol < 0) return; // need more
        const size = parseInt(buf.toString('latin1', pos, eol), 16);
        if (size === 0) {
          if (buf.length < eol + 4) return;
          rest = buf.subarray(eol + 4);
          break;
        }
        if (buf.length < eol + 2 + size + 2) return;
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        pos = eol + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else if (length >= 0) {
      if (buf.length < start + length) return;
      body = buf.subarray(start, start + length);
      rest = buf.subarray(start + length);
    } else {
      return; // body until close: not used by the servers under test
    }
    this.buf = rest.length ? rest : null;
    const cb = this.cb;
    this.cb = null;
    if (close && this.sock) {
      const s = this.sock;
      this.sock = null;
      s.destroy();
    }
    if (cb) cb(null, status, body);
  }

  destroy() {
    if (this.sock) this.sock.destroy();
    this.sock = null;
  }
}

function parseOpen(status, body) {
  if (status !== 200 || body[0] !== 0x30) throw new Error(`bad handshake: ${status} ${body.toString().slice(0, 200)}`);
  return JSON.parse(body.toString('utf8', 1)).sid;
}

// each client: POST a message, then GET until its echo came back.
async function pollingEcho() {
  const meter = new Meter();
  let running = true;
  let errors = 0;
  const clients = await openMany(CLIENTS, CONCURRENCY, () => {
    const http = new Http();
    return new Promise((resolve, reject) => {
      http.request('GET', POLL_PATH, null, (err, status, body) => {
        if (err) return reject(err);
        try {
          const sid = parseOpen(status, body);
          resolve({ http, path: `${POLL_PATH}&sid=${encodeURIComponent(sid)}` });
        } catch (e) {
          reject(e);
        }
      });
    });
  });
  const loops = clients.map(
    (c) =>
      new Promise((resolve) => {
        let pong = false;
        let t0 = 0;
        let gets = 0;
        const failed = (why) => {
          errors++;
          if (errors < 5) emit({ event: 'warning', scenario: SCENARIO, warning: String(why) });
          resolve();
        };
        const post = () => {
          if (!running) return resolve();
          t0 = performance.now();
          const body = pong ? `3\x1e${PAYLOAD}` : PAYLOAD;
          pong = false;
          c.http.request('POST', c.path, body, (err, status) => {
            if (err || status !== 200) return failed(err || `POST ${status}`);
            gets = 0;
            get();
          });
        };
        const get = () => {
          c.http.request('GET', c.path, null, (err, status, body) => {
            if (err || status !== 200) return failed(err || `GET ${status}`);
            let got = false;
            const text = body.toString();
            for (const p of text.split('\x1e')) {
              const k = p.charCodeAt(0);
              if (k === 0x34) got = true;
              else if (k === 0x32) pong = true;
              else if (k === 0x31) return failed('session closed by server');
            }
            if (got) {
              meter.record(performance.now() - t0);
              post();
            } else if (++gets < 5) get();
            else failed('no echo after 5 GETs');
          });
        };
        post();
      })
  );
  await measure(meter);
  running = false;
  await Promise.race([Promise.all(loops), sleep(5000)]);
  emit(meter.result({ clients: CLIENTS, unit: 'round trips/s', errors }));
  for (const c of clients) c.http.destroy();
}

// each client: GET handshake, POST "1" (close), repeat on one keep-alive connection.
async function pollingHandshake() {
  const meter = new Meter();
  let running = true;
  let errors = 0;
  const loops = [];
  const conns = [];
  for (let i = 0; i < CLIENTS; i++) {
    const http = new Http();
    conns.push(http);
    loops.push(
      new Promise((resolve) => {
        const failed = (why) => {
          errors++;
          if (errors < 5) emit({ event: 'warning', scenario: SCENARIO, warning: String(why) });
          setTimeout(once, 10);
        };
        const once = () => {
          if (!running) return resolve();
          const t0 = performance.now();
          http.request('GET', POLL_PATH, null, (err, status, body) => {
            if (err) return failed(err);
            let sid;
            try {
              sid = parseOpen(status, body);
            } catch (e) {
              return failed(e);
            }
            http.request('POST', `${POLL_PATH}&sid=${encodeURIComponent(sid)}`, '1', (err2, status2) => {
              if (err2 || status2 !== 200) return failed(err2 || `POST ${status2}`);
              meter.record(performance.now() - t0);
              once();
            });
          });
        };
        once();
      })
    );
  }
  await measure(meter);
  running = false;
  await Promise.race([Promise.all(loops), sleep(5000)]);
  emit(meter.result({ clients: CLIENTS, unit: 'handshakes/s', errors }));
  for (const c of conns) c.destroy();
}

// ---------------------------------------------------------------- main
const SCENARIOS = {
  'ws-echo': wsEcho,
  'ws-pipelined': wsEcho,
  'ws-handshake': wsHandshake,
  fanout,
  idle,
  'polling-echo': pollingEcho,
  'polling-handshake': pollingHandshake,
  'latency-under-load': latencyUnderLoad,
  churn: latencyUnderLoad,
  'reconnect-storm': reconnectStorm,
};

const run = SCENARIOS[SCENARIO];
if (!run) fail(`unknown scenario ${SCENARIO}; one of ${Object.keys(SCENARIOS).join(', ')}`);
run().then(
  () => process.exit(0),
  (err) => fail(err && err.stack ? err.stack.split('\n').slice(0, 3).join(' | ') : err)
);
