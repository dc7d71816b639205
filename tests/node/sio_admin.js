#!/usr/bin/env node
// The Socket.IO admin UI's side of the admin namespace, with socket.io-client (tests/test_socketio_admin.py).
//
// Usage: node tests/node/sio_admin.js URL --polling=N --upgraded=M [--auth=JSON] [--token=T]
//                                          [--timeout=MS]
//
// 1. Opens N clients on polling only and M that upgrade to websocket, each on
//    namespace "/" (auth {token: T}), and waits until all are connected (and upgraded).
// 2. Connects to "/admin" over websocket as the admin UI does (auth: --auth, or none),
//    and collects "config", "all_sockets" and "server_stats".
// 3. Waits for a server_stats report counting N + M + 1 clients; then every client
//    emits "echo" 3 times (acknowledged) and it waits until the reports' aggregated
//    packetsIn add up to at least those; then one more client connects and upgrades
//    ("socket_connected", "socket_updated"), and the first polling client disconnects
//    ("socket_disconnected").
// Prints ONE JSON line: {ok, error, clients: [{id, transport}], config, all_sockets,
// stats: [reports], connected, updated, disconnected, late: {id}}. If the admin
// connection is refused: {ok: false, connect_error: message}.
"use strict";

const path = require("node:path");
const { parseArgs } = require("node:util");

let sioClient;
try {
  sioClient = require("socket.io-client");
} catch (err) {
  sioClient = require(path.join(__dirname, "..", "..", "node_modules", "socket.io-client"));
}
const { io } = sioClient;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    polling: { type: "string", default: "1" },
    upgraded: { type: "string", default: "1" },
    auth: { type: "string" },
    token: { type: "string", default: "s3cret" },
    timeout: { type: "string", default: "30000" },
  },
});
const url = positionals[0];
const report = { ok: false, clients: [], stats: [], connected: [], updated: [], disconnected: [] };
const sockets = [];

function finish(extra) {
  Object.assign(report, extra);
  process.stdout.write(JSON.stringify(report) + "\n");
  for (const s of sockets) s.disconnect();
  setTimeout(() => process.exit(report.ok ? 0 : 1), 300).unref();
}

setTimeout(() => finish({ ok: false, error: "timeout" }), Number(values.timeout)).unref();

function client(upgrade) {
  return new Promise((resolve, reject) => {
    const s = io(url, {
      transports: upgrade ? ["polling", "websocket"] : ["polling"],
      auth: { token: values.token },
      forceNew: true,
      reconnection: false,
    });
    sockets.push(s);
    s.on("connect_error", (err) => reject(new Error(`client: ${err.message}`)));
    s.on("connect", () => {
      if (!upgrade) return resolve(s);
      if (s.io.engine.transport.name === "websocket") return resolve(s);
      s.io.engine.once("upgrade", () => resolve(s));
    });
  });
}

function waitFor(predicate, what) {
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (predicate()) {
        clearInterval(timer);
        resolve();
      }
    }, 20);
    setTimeout(() => {
      clearInterval(timer);
      reject(new Error(`timed out waiting for ${what}`));
    }, 10000).unref();
  });
}

async function main() {
  const n = Number(values.polling);
  const m = Number(values.upgraded);
  const clients = [];
  for (let i = 0; i < n; i++) clients.push(await client(false));
  for (let i = 0; i < m; i++) clients.push(await client(true));
  report.clients = clients.map((s) => ({ id: s.id, transport: s.io.engine.transport.name }));

  const opts = { transports: ["websocket"], forceNew: true, reconnection: false };
  if (values.auth !== undefined) opts.auth = JSON.parse(values.auth);
  const admin = io(url + "/admin", opts);
  sockets.push(admin);
  admin.on("config", (c) => (report.config = c));
  admin.on("all_sockets", (all) => (report.all_sockets = all));
  admin.on("server_stats", (s) => report.stats.push(s));
  admin.on("socket_connected", (s) => report.connected.push(s));
  admin.on("socket_updated", (u) => report.updated.push(u));
  admin.on("socket_disconnected", (...args) => report.disconnected.push(args));
  const refused = await new Promise((resolve) => {
    admin.on("connect", () => resolve(null));
    admin.on("connect_error", (err) => resolve(err.message));
  });
  if (refused !== null) return finish({ ok: false, connect_error: refused });

  await waitFor(() => report.config && report.all_sockets, "config and all_sockets");
  const total = n + m + 1;
  await waitFor(() => report.stats.some((s) => s.clientsCount === total), `server_stats with ${total} clients`);
  report.stats_before_echo = report.stats.length;

  for (const s of clients) {
    for (let i = 0; i < 3; i++) await s.timeout(5000).emitWithAck("echo", `hello ${i}`);
  }
  const packetsIn = () =>
    report.stats
      .slice(report.stats_before_echo)
      .flatMap((s) => s.aggregatedEvents)
      .filter((e) => e.type === "packetsIn")
      .reduce((a, e) => a + e.count, 0);
  await waitFor(() => packetsIn() >= 3 * clients.length, "packetsIn in server_stats");

  const late = await client(true);
  report.late = { id: late.id };
  await waitFor(() => report.connected.some((s) => s.id === late.id), "socket_connected of the late client");
  // upgraded after its Socket.IO connect: socket_updated; before it: connected as websocket
  await waitFor(
    () =>
      report.updated.some((u) => u.id === late.id) ||
      report.connected.some((s) => s.id === late.id && s.transport === "websocket"),
    "the late client seen on websocket",
  );

  const leaving = clients[0];
  const leavingId = (report.leaving = leaving.id); // (the client forgets its id on disconnect)
  leaving.disconnect();
  await waitFor(() => report.disconnected.some((d) => d[1] === leavingId), "socket_disconnected");
  finish({ ok: true });
}

main().catch((err) => finish({ ok: false, error: String(err && err.stack ? err.stack : err) }));
