#!/usr/bin/env node
// Soak/load client for tests/reliability/test_load.py: many concurrent Engine.IO v4
// sessions (polling, websocket, and polling upgraded to websocket mid-stream), each
// exchanging sequence-numbered messages with tests/apps/reliability_app.py, with random
// lifetimes ending in a clean close or an abrupt drop, and reconnecting.
//
// Client -> server: "c<n>" (n = 1, 2, ... per session). The app answers "s<m>:<n>" where
// m is its own counter. The client checks both sequences and, for a clean close, waits
// until every message it sent was answered before sending CLOSE, so the counts on both
// sides must match exactly.
//
// Output: one JSON line on stdout at the end ({"summary": ..., "sessions": [...]});
// progress lines on stderr. Talks to 127.0.0.1 only. Every wait is bounded and the
// process exits by itself after --time-limit seconds whatever happens.
'use strict';

const http = require('http');
const WebSocket = require('ws');

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--')) throw new Error(`bad argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}
const A = parseArgs(process.argv.slice(2));
const num = (k, d) => (A[k] === undefined ? d : Number(A[k]));
const HOST = '127.0.0.1';
const PORT = num('port', 8000);
const SESSIONS = num('sessions', 100); // concurrent slots
const DURATION = num('duration', 10) * 1000; // ms of traffic after ramp-up starts
const RAMP = num('ramp', 2) * 1000; // ms over which slots start
const WS_SHARE = num('ws-share', 0.4);
const UPGRADE_SHARE = num('upgrade-share', 0.2); // the rest is polling only
const INTERVAL = num('interval', 1000); // ms between messages of one session (mean)
const LIFETIME = num('lifetime', 5) * 1000; // mean ms before a random disconnect
const ABRUPT_SHARE = num('abrupt-share', 0.2);
const WINDOW = num('window', 4); // unanswered messages allowed per session
const SPREAD = num('stop-spread', 0) * 1000; // final closes spread over this many ms after DURATION
const TIME_LIMIT = num('time-limit', DURATION / 1000 + 120) * 1000;
let seed = num('seed', 1) >>> 0;

function rand() {
  // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const expo = (mean) => -Math.log(1 - rand()) * mean;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const RS = '\x1e';
const PATH = '/engine.io/?EIO=4';
// idle keep-alive sockets are dropped after 2 s, before the servers' own 5 s keep-alive
// timeout: a request written on a socket the server is closing at that moment gets
// ECONNRESET (the usual keep-alive race), which says nothing about the server under test
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 2048, timeout: 2000 });

const records = [];
const errors = [];
const counters = {
  handshakeFailures: 0,
  serverClosed: 0,
  opened: 0,
  upgrades: 0,
  upgradesAborted: 0,
  maxPostMs: 0,
  maxPingToPongMs: 0,
};
function error(msg) {
  if (errors.length < 100) errors.push(msg);
}
let stopping = false;
const t0 = Date.now();

const hard = setTimeout(() => {
  process.stdout.write(JSON.stringify({ fatal: `time limit ${TIME_LIMIT} ms exceeded`, errors }) + '\n');
  process.exit(3);
}, TIME_LIMIT);
hard.unref();

function request(method, path, body, timeoutMs) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port: PORT, method, path, agent, headers: body ? { 'content-type': 'text/plain' } : {} },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
    return req;
  });
}

// a request whose in-flight ClientRequest can be destroyed (for abrupt drops)
function abortableGet(path, timeoutMs) {
  let req;
  const p = new Promise((resolve, reject) => {
    req = http.get({ host: HOST, port: PORT, path, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
  return { promise: p, abort: () => req.destroy(new Error('aborted by the client')) };
}

class Session {
  constructor(kind) {
    this.kind = kind; // 'polling' | 'websocket' | 'upgrade'
    this.sid = null;
    this.sent = 0;
    this.received = 0;
    this.lastServerSeq = 0;
    this.orderErrors = 0;
    this.transport = kind === 'websocket' ? 'websocket' : 'polling';
    this.out = []; // packets waiting for a POST
    this.postBusy = false;
    this.pendingSends = []; // messages held while the upgrade pauses polling
    this.paused = false;
    this.dead = false;
    this.ended = null; // why the session ended
    this.ws = null;
    this.getHandle = null;
    this.pingTimeoutMs = 40000;
    this.upgradeStarted = false;
  }

  get outstanding() {
    return this.sent - this.received;
  }

  onPacket(p) {
    if (this.dead) return;
    const t = p[0];
    if (t === '4') this.onMessage(p.slice(1));
    else if (t === '2') {
      this.pingAt = Date.now();
      this.sendPacket('3');
    }
    else if (t === '1') {
      counters.serverClosed++;
      error(`${this.sid} (${this.kind}) closed by the server`);
      this.dead = true;
      this.ended = 'server';
    } else if (t === '6' || t === '0' || t === '3') {
      // noop, (late) open, pong
    } else error(`${this.sid}: unexpected packet ${p.slice(0, 20)}`);
  }

  onMessage(text) {
    const m = /^s(\d+):(\d+)$/.exec(text);
    if (!m) {
      error(`${this.sid}: unexpected message ${text.slice(0, 30)}`);
      this.orderErrors++;
      return;
    }
    const serverSeq = Number(m[1]);
    const echoed = Number(m[2]);
    if (serverSeq !== this.lastServerSeq + 1 || echoed !== this.received + 1) {
      this.orderErrors++;
      error(`${this.sid}: got s${serverSeq}:${echoed} after s${this.lastServerSeq}, ${this.received} received`);
    }
    this.lastServerSeq = serverSeq;
    this.received++;
  }

  sendPacket(p) {
    if (this.dead) return;
    if (this.transport === 'websocket') {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(p);
      return;
    }
    this.out.push(p);
    this.flushPost();
  }

  sendMessage() {
    if (this.paused) {
      this.pendingSends.push(++this.sent);
      return;
    }
    this.sendPacket('4c' + ++this.sent);
  }

  flushPost() {
    if (this.postBusy || !this.out.length || this.dead || this.transport !== 'polling') return;
    const batch = this.out.splice(0, 16);
    this.postBusy = true;
    const started = Date.now();
    const pingAt = batch.includes('3') ? this.pingAt : null;
    request('POST', `${PATH}&transport=polling&sid=${this.sid}`, batch.join(RS), 20000)
      .then((res) => {
        counters.maxPostMs = Math.max(counters.maxPostMs, Date.now() - started);
        if (pingAt) counters.maxPingToPongMs = Math.max(counters.maxPingToPongMs, Date.now() - pingAt);
        if (res.status !== 200 && !this.dead && !this.closing) {
          error(`${this.sid}: POST ${res.status} ${res.body.slice(0, 60)}`);
          this.fail('post-refused');
        }
      })
      .catch((e) => {
        if (!this.dead) {
          error(`${this.sid}: POST failed ${e.message}`);
          this.fail('post-error');
        }
      })
      .finally(() => {
        this.postBusy = false;
        this.flushPost();
        if (this.postIdle && !this.postBusy && !this.out.length) this.postIdle();
      });
  }

  fail(why) {
    if (this.dead) return;
    this.dead = true;
    this.ended = why;
    if (this.ws) this.ws.terminate();
    if (this.getHandle) this.getHandle.abort();
  }

  async openPolling() {
    const res = await request('GET', `${PATH}&transport=polling`, null, 15000);
    if (res.status !== 200 || res.body[0] !== '0') throw new Error(`handshake ${res.status} ${res.body.slice(0, 60)}`);
    const packets = res.body.split(RS);
    const hs = JSON.parse(packets[0].slice(1));
    this.sid = hs.sid;
    this.pingTimeoutMs = hs.pingInterval + hs.pingTimeout + 10000;
    for (const p of packets.slice(1)) this.onPacket(p);
    this.pollLoop();
  }

  async pollLoop() {
    for (let i = 0; i < 1e7 && !this.dead && this.transport === 'polling'; i++) {
      this.getHandle = abortableGet(`${PATH}&transport=polling&sid=${this.sid}`, this.pingTimeoutMs);
      let res;
      try {
        res = await this.getHandle.promise;
      } catch (e) {
        if (!this.dead) {
          error(`${this.sid}: GET failed ${e.message}`);
          this.fail('get-error');
        }
        break;
      } finally {
        this.getHandle = null;
      }
      if (res.status !== 200) {
        if (!this.dead && !this.closing) {
          error(`${this.sid}: GET ${res.status} ${res.body.slice(0, 60)}`);
          this.fail('get-refused');
        }
        break;
      }
      for (const p of res.body.split(RS)) this.onPacket(p);
      if (this.paused) break; // the upgrade takes over; this was the last poll
      if (this.closing) break;
    }
    if (this.pollDone) this.pollDone();
  }

  openWebsocket(sid) {
    return new Promise((resolve, reject) => {
      const url = `ws://${HOST}:${PORT}${PATH}&transport=websocket${sid ? `&sid=${sid}` : ''}`;
      const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 15000 });
      // frames can arrive in the same read as the 101 response: keep them until attached
      ws.early = [];
      ws.on('message', (data, isBinary) => {
        if (ws.early) ws.early.push([data, isBinary]);
      });
      ws.on('error', (e) => reject(e));
      ws.once('open', () => resolve(ws));
    });
  }

  // the next frame of a websocket not attached yet (the open packet, 3probe)
  nextFrame(ws, ms) {
    if (ws.early.length) return Promise.resolve(ws.early.shift()[0].toString());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no frame in time')), ms);
      const check = () => {
        if (ws.early.length) {
          clearTimeout(t);
          ws.off('message', check);
          ws.off('close', closed);
          resolve(ws.early.shift()[0].toString());
        }
      };
      const closed = () => {
        clearTimeout(t);
        ws.off('message', check);
        reject(new Error('closed'));
      };
      ws.on('message', check); // registered after the buffering listener, so it runs after it
      ws.once('close', closed);
    });
  }

  attachWebsocket(ws) {
    this.ws = ws;
    ws.removeAllListeners('error');
    ws.on('error', (e) => {
      if (!this.dead) error(`${this.sid}: websocket error ${e.message}`);
    });
    const early = ws.early;
    ws.early = null;
    const handle = (data, isBinary) => {
      if (isBinary) return error(`${this.sid}: binary frame`);
      this.onPacket(data.toString());
    };
    for (const [data, isBinary] of early) handle(data, isBinary);
    ws.on('message', handle);
    ws.on('close', () => {
      this.wsClosed = true;
      if (!this.dead && !this.closing) {
        // for an upgraded session this may be the upgrade race (the server's upgrade
        // timeout closed the probe while our "5" was on its way): test_load.py decides
        if (this.kind !== 'upgrade') error(`${this.sid}: websocket closed by the server`);
        this.fail('ws-closed');
      }
      if (this.onWsClose) this.onWsClose();
    });
  }

  async openWebsocketSession() {
    const ws = await this.openWebsocket(null);
    const first = await this.nextFrame(ws, 15000);
    if (first[0] !== '0') throw new Error(`first frame ${first.slice(0, 40)}`);
    const hs = JSON.parse(first.slice(1));
    this.sid = hs.sid;
    this.attachWebsocket(ws);
  }

  async upgrade() {
    this.upgradeStarted = true;
    this.upgrading = true;
    try {
      await this.doUpgrade();
    } finally {
      this.upgrading = false;
    }
  }

  async doUpgrade() {
    let ws;
    let probeClosed = false;
    try {
      ws = await this.openWebsocket(this.sid);
      ws.once('close', () => (probeClosed = true));
      ws.send('2probe');
      const answer = await this.nextFrame(ws, 15000);
      if (answer !== '3probe') throw new Error(`probe answer ${answer}`);
    } catch (e) {
      // the probe failed (refused, or closed by the server's upgrade timeout before it
      // was answered): the session stays on polling, as engine.io-client does
      if (ws) ws.terminate();
      counters.upgradesAborted++;
      return;
    }
    if (this.dead || this.closing) {
      ws.terminate();
      return;
    }
    // pause polling: hold new messages, let the POST and the GET in flight finish
    this.paused = true;
    const pollEnded = new Promise((r) => (this.pollDone = r));
    const postIdle = new Promise((r) => (this.postIdle = r));
    if (!this.postBusy && !this.out.length) this.postIdle();
    await Promise.race([Promise.all([pollEnded, postIdle]), sleep(15000)]);
    // the last poll may have carried a ping whose pong went out as a POST: wait for it too
    for (let i = 0; i < 750 && (this.postBusy || this.out.length) && !this.dead; i++) await sleep(20);
    if (this.dead) {
      ws.terminate();
      return;
    }
    if (probeClosed || ws.readyState !== WebSocket.OPEN) {
      // the server gave up on the probe (its upgrade timeout): stay on polling, as
      // engine.io-client does, and send what was held back
      counters.upgradesAborted++;
      this.paused = false;
      this.pollDone = null;
      this.pollLoop();
      for (const n of this.pendingSends.splice(0)) this.sendPacket('4c' + n);
      return;
    }
    ws.send('5');
    this.transport = 'websocket';
    this.attachWebsocket(ws);
    for (const p of this.out.splice(0)) ws.send(p); // control packets queued meanwhile (pongs)
    this.paused = false;
    for (const n of this.pendingSends.splice(0)) ws.send('4c' + n);
    counters.upgrades++;
  }

  async waitAnswered(ms) {
    for (let waited = 0; waited < ms && this.outstanding > 0 && !this.dead; waited += 20) await sleep(20);
    return this.outstanding === 0;
  }

  async closeClean() {
    this.stopSending = true;
    if (!(await this.waitAnswered(20000))) {
      if (!this.dead) error(`${this.sid}: ${this.outstanding} messages never answered`);
      this.fail('unanswered');
      return;
    }
    if (this.dead) return;
    // an upgrade in progress settles first (bounded: upgrade() gives up after 15 s waits)
    for (let i = 0; i < 2000 && this.upgrading && !this.dead; i++) await sleep(20);
    if (this.dead) return;
    if (this.transport === 'websocket' && this.wsClosed) {
      this.fail('ws-closed');
      return;
    }
    this.closing = true;
    if (this.transport === 'websocket') {
      const closed = new Promise((r) => (this.onWsClose = r));
      this.ws.send('1');
      await Promise.race([closed, sleep(5000)]);
      if (!this.wsClosed) this.ws.terminate();
    } else {
      const done = new Promise((r) => (this.pollDone = r));
      this.out.push('1');
      this.flushPost();
      await Promise.race([done, sleep(10000)]);
    }
    this.dead = true;
    this.ended = this.ended || 'clean';
  }

  closeAbrupt() {
    this.dead = true;
    this.ended = 'abrupt';
    if (this.ws) this.ws.terminate();
    if (this.getHandle) this.getHandle.abort();
  }

  async run(lifetimeMs) {
    try {
      if (this.kind === 'websocket') await this.openWebsocketSession();
      else await this.openPolling();
    } catch (e) {
      counters.handshakeFailures++;
      error(`handshake (${this.kind}) failed: ${e.message}`);
      return;
    }
    counters.opened++;
    // sessions alive at the end close at a random moment within the spread, not all at once
    const end = Math.min(Date.now() + lifetimeMs, t0 + DURATION + rand() * SPREAD);
    const upgradeAt = this.kind === 'upgrade' ? Date.now() + 200 + rand() * Math.min(3000, lifetimeMs / 2) : Infinity;
    let upgrading = null;
    for (let i = 0; i < 1e7 && !this.dead && !stopping && Date.now() < end; i++) {
      if (Date.now() >= upgradeAt && !this.upgradeStarted) {
        upgrading = this.upgrade().catch((e) => {
          if (!this.dead) {
            error(`${this.sid}: upgrade failed ${e.message}`);
            this.fail('upgrade-failed');
          }
        });
      }
      if (this.outstanding < WINDOW) this.sendMessage();
      await sleep(INTERVAL * (0.5 + rand()));
    }
    if (upgrading) await upgrading;
    const abrupt = !stopping && Date.now() < t0 + DURATION && rand() < ABRUPT_SHARE;
    if (this.dead) {
      // ended by a failure: recorded as such
    } else if (abrupt) {
      // drop the connection right after a send, so a message may be in flight
      if (this.outstanding < WINDOW && !this.paused) this.sendMessage();
      this.closeAbrupt();
    }
    else await this.closeClean();
    records.push({
      sid: this.sid,
      kind: this.kind,
      ended: this.ended,
      sent: this.sent,
      received: this.received,
      lastServerSeq: this.lastServerSeq,
      orderErrors: this.orderErrors,
      upgraded: this.kind === 'upgrade' && this.transport === 'websocket',
    });
  }
}

function pickKind() {
  const r = rand();
  if (r < WS_SHARE) return 'websocket';
  if (r < WS_SHARE + UPGRADE_SHARE) return 'upgrade';
  return 'polling';
}

async function slot(i) {
  await sleep((RAMP * i) / SESSIONS);
  for (let n = 0; n < 1e6 && !stopping && Date.now() < t0 + DURATION; n++) {
    const s = new Session(pickKind());
    await s.run(expo(LIFETIME));
    if (!stopping) await sleep(rand() * 200);
  }
}

let peak = 0;
let live = 0;
async function main() {
  const progress = setInterval(() => {
    process.stderr.write(
      `[soak] t=${((Date.now() - t0) / 1000).toFixed(0)}s opened=${counters.opened} done=${records.length} ` +
        `errors=${errors.length}\n`,
    );
  }, 5000);
  progress.unref();
  const slots = [];
  for (let i = 0; i < SESSIONS; i++) slots.push(slot(i));
  const tick = setInterval(() => {
    live = counters.opened - records.length;
    peak = Math.max(peak, live);
  }, 100);
  await sleep(DURATION + SPREAD);
  stopping = true;
  await Promise.all(slots);
  clearInterval(tick);
  const summary = { ...counters, peakConcurrent: peak, records: records.length, errors };
  summary.sent = records.reduce((a, r) => a + r.sent, 0);
  summary.received = records.reduce((a, r) => a + r.received, 0);
  summary.seconds = (Date.now() - t0) / 1000;
  const cpu = process.cpuUsage();
  summary.cpuShare = (cpu.user + cpu.system) / 1e6 / summary.seconds;
  agent.destroy();
  // a large write to a pipe completes asynchronously: exit once it is flushed
  process.stdout.write(JSON.stringify({ summary, sessions: records }) + '\n', () => process.exit(0));
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ fatal: String(e && e.stack), errors }) + '\n');
  process.exit(2);
});
