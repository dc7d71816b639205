#!/usr/bin/env node
// Hold Engine.IO connections open, driven line by line from stdin (tests/test_metrics.py).
//
// Usage: node tests/node/eio_hold.js URL --polling=N --upgraded=M [--timeout=MS]
//
// Opens N clients on polling only and M clients that upgrade to websocket, and
// prints {"ready": true, "sids": {...}} once all are open (and the M upgraded).
// Then, for each stdin line:
//   close-polling K     the first K polling clients still open close themselves
//   close-websocket K   the same for upgraded clients
// each answered with {"closed": ..., "open": {...}} once the closes went out.
// stdin's end (or the hard timeout, default 60000 ms) closes the rest and exits.
"use strict";

const path = require("node:path");
const readline = require("node:readline");
const { parseArgs } = require("node:util");

let eioClient;
try {
  eioClient = require("engine.io-client");
} catch (err) {
  eioClient = require(path.join(__dirname, "..", "..", "node_modules", "engine.io-client"));
}
const { Socket } = eioClient;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    polling: { type: "string", default: "0" },
    upgraded: { type: "string", default: "0" },
    timeout: { type: "string", default: "60000" },
  },
});
const url = positionals[0];
const groups = { polling: [], websocket: [] };

function say(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const hard = setTimeout(() => {
  say({ error: "timeout" });
  process.exit(2);
}, Number(values.timeout));

function open(kind) {
  return new Promise((resolve, reject) => {
    const opts = kind === "polling" ? { transports: ["polling"] } : { transports: ["polling", "websocket"] };
    const socket = new Socket(url, opts);
    socket.on("error", (err) => reject(new Error(`${kind}: ${err}`)));
    if (kind === "polling") {
      socket.on("open", () => resolve(socket));
    } else {
      socket.on("upgrade", () => resolve(socket));
      socket.on("upgradeError", (err) => reject(new Error(`upgrade: ${err}`)));
    }
  });
}

function counts() {
  return { polling: groups.polling.length, websocket: groups.websocket.length };
}

async function main() {
  const wanted = [];
  for (let i = 0; i < Number(values.polling); i++) wanted.push(open("polling").then((s) => groups.polling.push(s)));
  for (let i = 0; i < Number(values.upgraded); i++) wanted.push(open("websocket").then((s) => groups.websocket.push(s)));
  await Promise.all(wanted);
  say({ ready: true, open: counts(), transports: groups.websocket.map((s) => s.transport.name) });
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    const [cmd, n] = line.trim().split(/\s+/);
    const kind = cmd === "close-polling" ? "polling" : cmd === "close-websocket" ? "websocket" : null;
    if (kind === null) {
      say({ error: `unknown command ${line}` });
      return;
    }
    const closing = groups[kind].splice(0, Number(n));
    let pending = closing.length;
    if (pending === 0) say({ closed: 0, open: counts() });
    for (const socket of closing) {
      socket.on("close", () => {
        pending -= 1;
        if (pending === 0) say({ closed: closing.length, open: counts() });
      });
      socket.close();
    }
  });
  rl.on("close", () => {
    for (const s of [...groups.polling, ...groups.websocket]) s.close();
    clearTimeout(hard);
    setTimeout(() => process.exit(0), 500).unref();
  });
}

main().catch((err) => {
  say({ error: String(err) });
  process.exit(1);
});
