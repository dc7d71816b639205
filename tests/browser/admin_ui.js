#!/usr/bin/env node
// The Socket.IO admin UI (the built UI of the npm package @socket.io/admin-ui) in Debian's
// Chromium, headless, against a python-socketio server on engineio_asgi (tests/test_browser.py).
//
// Usage: node tests/browser/admin_ui.js SIO_URL SCREENSHOT_DIR
//
// Connects two socket.io-client clients to SIO_URL (one on polling only, one upgraded to
// websocket, auth {token: "s3cret"}), serves the UI's files on a free 127.0.0.1 port,
// opens it with the server's URL in its saved settings (websocket only, namespace /admin,
// no credentials: the server runs instrument(auth=False)), and waits until the sockets
// page lists both clients with their transports and the dashboard counts them. Saves
// admin-ui-sockets.png and admin-ui-dashboard.png in SCREENSHOT_DIR. Prints ONE JSON
// line: {ok, error, clients: [{id, transport}], rows: [...], dashboard: text}.
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");

const { ROOT, launch, requireFromProject } = require("./chromium");

const { io } = requireFromProject("socket.io-client");

const UI_DIR = path.join(ROOT, "node_modules", "@socket.io", "admin-ui", "ui", "dist");
const STEP_MS = 15000;
const TYPES = { ".html": "text/html", ".js": "application/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml" };

const [sioUrl, shotDir] = process.argv.slice(2);
let browser = null;
let server = null;
const sockets = [];
const report = { ok: false };

async function finish(extra, code) {
  Object.assign(report, extra);
  process.stdout.write(JSON.stringify(report) + "\n");
  for (const s of sockets) s.disconnect();
  try {
    if (browser) await browser.close();
  } catch (e) {
    // gone already
  }
  if (server) server.close();
  process.exit(code);
}
setTimeout(() => finish({ error: "hard limit of 60 s" }, 2), 60000).unref();

function client(upgrade) {
  return new Promise((resolve, reject) => {
    const s = io(sioUrl, {
      transports: upgrade ? ["polling", "websocket"] : ["polling"],
      auth: { token: "s3cret" },
      forceNew: true,
      reconnection: false,
    });
    sockets.push(s);
    s.on("connect_error", (err) => reject(new Error(`client: ${err.message}`)));
    s.on("connect", () => {
      if (!upgrade || s.io.engine.transport.name === "websocket") return resolve(s);
      s.io.engine.once("upgrade", () => resolve(s));
    });
  });
}

function serveUI() {
  // the UI's own files, nothing else (the path is resolved inside UI_DIR)
  server = http.createServer((rq, rs) => {
    const rel = decodeURIComponent(new URL(rq.url, "http://x").pathname).replace(/^\/+/, "") || "index.html";
    const file = path.join(UI_DIR, rel);
    if (!file.startsWith(UI_DIR) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      rs.writeHead(404).end();
      return;
    }
    rs.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream" });
    fs.createReadStream(file).pipe(rs);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
}

async function main() {
  const clients = [await client(false), await client(true)];
  report.clients = clients.map((s) => ({ id: s.id, transport: s.io.engine.transport.name }));
  const uiUrl = `http://127.0.0.1:${await serveUI()}/`;

  browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (err) => pageErrors.push(String(err)));
  // fonts and icons from CDNs: no network here, and the UI works without them
  await page.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) => route.abort());
  await page.goto(uiUrl);
  await page.evaluate((url) => {
    localStorage.setItem("server_url", url);
    localStorage.setItem("ws_only", "true");
    localStorage.setItem("namespace", "/admin");
    localStorage.setItem("path", "/socket.io");
  }, sioUrl);
  await page.goto(uiUrl + "#/sockets/");
  await page.reload();
  const ids = report.clients.map((c) => c.id);
  try {
    await page.waitForFunction(
      (wanted) => wanted.every((id) => document.body.innerText.includes(id)),
      ids,
      { timeout: STEP_MS },
    );
  } catch (err) {
    const text = await page.evaluate(() => document.body.innerText);
    throw new Error(`the sockets page never listed ${ids}; it shows:\n${text.slice(0, 2000)}\n${pageErrors}`);
  }
  report.rows = await page.evaluate(() => Array.from(document.querySelectorAll("tbody tr")).map((tr) => tr.innerText));
  await page.screenshot({ path: path.join(shotDir, "admin-ui-sockets.png"), fullPage: true });

  await page.goto(uiUrl + "#/");
  // the dashboard: clients by transport (ours and the UI's own websocket), and this server
  // reported healthy, which takes a server_stats report
  const DASHBOARD = ["WebSocket\\s+2\\s", "HTTP long-polling\\s+1\\s", "HEALTHY\\s+1\\s"];
  try {
    await page.waitForFunction(
      (patterns) => patterns.every((p) => new RegExp(p).test(document.body.innerText)),
      DASHBOARD,
      { timeout: STEP_MS },
    );
  } catch (err) {
    const text = await page.evaluate(() => document.body.innerText);
    throw new Error(`the dashboard never showed ${DASHBOARD}; it shows:\n${text.slice(0, 2000)}`);
  }
  report.dashboard = await page.evaluate(() => document.body.innerText);
  await page.screenshot({ path: path.join(shotDir, "admin-ui-dashboard.png"), fullPage: true });
  report.pageErrors = pageErrors;
  await finish({ ok: true }, 0);
}

main().catch((err) => finish({ error: String(err && err.stack ? err.stack : err) }, 1));
