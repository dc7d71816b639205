#!/usr/bin/env node
// Drives Debian's Chromium (headless, through playwright-core) for tests/test_browser.py.
//
// Usage:
//   node tests/browser/drive.js demo URL SCREENSHOT
//       Opens the demo at URL in two tabs; checks the first connects over polling and
//       upgrades to websocket; sends text (seen by both tabs) and binary (echoed);
//       prints {"event":"ready-for-restart"} and waits for the line "restarted" on
//       stdin while the test restarts the server; then checks the page reconnected
//       by itself (a new sid, on websocket) and still talks. Saves SCREENSHOT.
//   node tests/browser/drive.js cors PAGE_URL REFUSED_URL ALLOWED_URL SCREENSHOT
//       Opens PAGE_URL (another origin) and, from it, connects to REFUSED_URL (over
//       polling, then websocket only) and to ALLOWED_URL; reports what happened.
//   node tests/browser/drive.js v3 URL SCREENSHOT
//       Opens tests/browser/v3.html (served by tests/apps/v3_browser_app.py at URL) and runs
//       the engine.io-client 3.x bundle over XHR polling, JSONP, websocket and the upgrade.
//
// Every step line and the final report are single JSON lines on stdout; the final
// one has "ok". Each wait is bounded; the whole run has a hard limit (HARD_LIMIT_MS).
"use strict";

const readline = require("node:readline");

const chromium = require("./chromium");

const HARD_LIMIT_MS = Number(process.env.BROWSER_HARD_LIMIT_MS || 60000);
const STEP_MS = 10000;

const { emit, finish, launch: launchBrowser } = chromium.run(HARD_LIMIT_MS);

// Lines from the test on stdin, handed to whoever waits for one.
const stdinLines = [];
const lineWaiters = [];
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const waiter = lineWaiters.shift();
  if (waiter) waiter(line.trim());
  else stdinLines.push(line.trim());
});
function nextLine() {
  if (stdinLines.length) return Promise.resolve(stdinLines.shift());
  return new Promise((resolve) => lineWaiters.push(resolve));
}

async function launch() {
  const browser = await launchBrowser();
  return browser.newContext({ viewport: { width: 860, height: 640 } });
}

function logText(page) {
  return page.evaluate(() => document.getElementById("log").innerText);
}

async function waitForLog(page, needle, timeout = STEP_MS) {
  try {
    await page.waitForFunction((n) => document.getElementById("log").innerText.includes(n), needle, {
      timeout,
    });
  } catch (err) {
    throw new Error(`"${needle}" never appeared in the page log; log:\n${await logText(page)}`);
  }
}

async function waitForTransport(page, name, otherThanSid = null, timeout = STEP_MS) {
  try {
    await page.waitForFunction(
      ([n, old]) =>
        document.getElementById("status").textContent === n &&
        !!document.body.dataset.sid &&
        document.body.dataset.sid !== old,
      [name, otherThanSid],
      { timeout },
    );
  } catch (err) {
    const status = await page.evaluate(() => document.getElementById("status").textContent);
    throw new Error(`transport never became ${name} (status: ${status}); log:\n${await logText(page)}`);
  }
  return page.evaluate(() => document.body.dataset.sid);
}

function watchEngineIO(page) {
  const seen = { requests: [], websockets: [], pageErrors: [] };
  page.on("request", (r) => {
    if (r.url().includes("/engine.io/")) seen.requests.push(`${r.method()} ${r.url()}`);
  });
  page.on("websocket", (ws) => seen.websockets.push(ws.url()));
  page.on("pageerror", (err) => seen.pageErrors.push(String(err)));
  return seen;
}

async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

async function demo(url, screenshot) {
  const context = await launch();
  const page = await context.newPage();
  const seen = watchEngineIO(page);
  await page.goto(url, { timeout: STEP_MS });
  const sid1 = await waitForTransport(page, "websocket");
  await waitForLog(page, `connected as ${sid1} over polling`);
  await waitForLog(page, "upgraded to websocket");
  emit({ event: "connected", sid: sid1 });

  const page2 = await context.newPage();
  await page2.goto(url, { timeout: STEP_MS });
  const sidTab2 = await waitForTransport(page2, "websocket");

  await say(page, "hello from tab 1");
  await waitForLog(page, "(websocket): hello from tab 1");
  await waitForLog(page2, "(websocket): hello from tab 1");
  await page.click("#binary");
  await waitForLog(page, "binary echo: 1,2,3,254,255");
  await page2.close();
  emit({ event: "exchanged" });

  emit({ event: "ready-for-restart", sid: sid1 });
  const answer = await nextLine();
  if (answer !== "restarted") throw new Error(`expected "restarted" on stdin, got ${JSON.stringify(answer)}`);
  const sid2 = await waitForTransport(page, "websocket", sid1, 20000);
  await waitForLog(page, `connected as ${sid2} over polling`);
  await say(page, "back after the restart");
  await waitForLog(page, "(websocket): back after the restart");
  await page.screenshot({ path: screenshot, fullPage: true });
  return {
    sid1,
    sid2,
    sidTab2,
    log: (await logText(page)).split("\n"),
    ...seen,
  };
}

async function cors(pageUrl, refusedUrl, allowedUrl, screenshot) {
  const context = await launch();
  const page = await context.newPage();
  const seen = watchEngineIO(page);
  const consoleMessages = [];
  page.on("console", (m) => consoleMessages.push(m.text()));
  const failed = [];
  page.on("requestfailed", (r) => {
    if (r.url().includes("/engine.io/")) failed.push({ url: r.url(), error: r.failure() && r.failure().errorText });
  });
  const bundle = `${refusedUrl}/engine.io.min.js`;
  await page.goto(`${pageUrl}?bundle=${encodeURIComponent(bundle)}`, { timeout: STEP_MS });
  const connect = (url, transports) =>
    page.evaluate(([u, t]) => window.tryConnect(u, t, 6000), [url, transports]);
  const refusedPolling = await connect(refusedUrl, ["polling", "websocket"]);
  const refusedWebsocket = await connect(refusedUrl, ["websocket"]);
  const allowed = await connect(allowedUrl, ["polling", "websocket"]);
  await page.screenshot({ path: screenshot, fullPage: true });
  return {
    origin: new URL(pageUrl).origin,
    refusedPolling,
    refusedWebsocket,
    allowed,
    failed,
    console: consoleMessages,
    ...seen,
  };
}

// The engine.io-client 3.x bundle (tests/browser/v3.html) against an allow_eio3 server:
// XHR polling (binary in XHR2 payloads), JSONP forced, websocket only, and the upgrade.
// Reports each run and, per mode, the content types of the Engine.IO GET responses.
async function v3(url, screenshot) {
  const context = await launch();
  const page = await context.newPage();
  const seen = watchEngineIO(page);
  const responses = [];
  page.on("response", (r) => {
    if (r.url().includes("/engine.io/") && r.request().method() === "GET") {
      responses.push({ url: r.url(), status: r.status(), type: r.headers()["content-type"] || null });
    }
  });
  await page.goto(url, { timeout: STEP_MS });
  const modes = {
    polling: { transports: ["polling"] },
    jsonp: { transports: ["polling"], forceJSONP: true },
    websocket: { transports: ["websocket"] },
    upgrade: { transports: ["polling", "websocket"], waitUpgrade: true },
  };
  const runs = {};
  for (const [name, options] of Object.entries(modes)) {
    runs[name] = await page.evaluate(([n, o]) => window.runV3(n, o, 8000), [name, options]);
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  return { runs, responses, log: (await logText(page)).split("\n"), ...seen };
}

(async () => {
  const [scenario, ...rest] = process.argv.slice(2);
  let result;
  if (scenario === "demo" && rest.length === 2) result = await demo(...rest);
  else if (scenario === "cors" && rest.length === 4) result = await cors(...rest);
  else if (scenario === "v3" && rest.length === 2) result = await v3(...rest);
  else {
    await finish({ ok: false, error: "usage: drive.js demo URL SCREENSHOT | cors PAGE REFUSED ALLOWED SCREENSHOT | v3 URL SCREENSHOT" }, 3);
    return;
  }
  await finish({ ok: true, scenario, ...result }, 0);
})().catch((err) => finish({ ok: false, error: err && err.stack ? err.stack : String(err) }, 1));
