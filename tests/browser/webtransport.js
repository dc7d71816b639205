#!/usr/bin/env node
// Drives Debian's Chromium (headless, through playwright-core) against examples/webtransport
// for tests/test_browser_webtransport.py.
//
// Usage: node tests/browser/webtransport.js BASE_URL SCREENSHOT
//
// Runs each scenario in a page of its own and prints one JSON line per scenario
// ({"scenario": ..., ...what the page saw}), then a final line with "ok":
//   direct    - transports ["webtransport"]: open, text and binary echoed, then the
//               server disconnects the session ("disconnect me")
//   upgrade   - ?upgrade=1: polling first, then the upgrade; text echoed; the client closes
//   timeout   - the page stops writing (its pongs never leave): the server's ping timeout
//   refused   - with MAX_CLIENTS=1 and one page open, a second page is refused by the
//               connect handler
// QUIC stays on: no --disable-quic. The certificate is accepted through
// serverCertificateHashes (the page passes the hash it gets from /config.json).
"use strict";


const chromium = require("./chromium");

const HARD_LIMIT_MS = Number(process.env.BROWSER_HARD_LIMIT_MS || 90000);
const STEP_MS = 10000;
const [BASE, SCREENSHOT] = process.argv.slice(2);

const { emit, finish, launch } = chromium.run(HARD_LIMIT_MS);

const state = () => document.getElementById("state").textContent;

async function openPage(context, query) {
  const page = await context.newPage();
  const seen = { console: [], pageErrors: [] };
  page.on("console", (m) => seen.console.push(m.text()));
  page.on("pageerror", (e) => seen.pageErrors.push(String(e)));
  await page.goto(BASE + "/" + query, { timeout: STEP_MS });
  return { page, seen };
}

async function waitOpenOn(page, transport) {
  await page.waitForFunction(
    (t) => document.getElementById("state").textContent === "open" && window.socket.transport.name === t,
    transport,
    { timeout: STEP_MS },
  );
}

async function waitClosed(page) {
  await page.waitForFunction(() => document.getElementById("state").textContent.startsWith("closed"), null, {
    timeout: STEP_MS,
  });
  return page.evaluate(state);
}

async function echo(page) {
  await page.evaluate(() => {
    window.socket.send("héllo");
    window.socket.send(new Uint8Array([0, 1, 2, 255]));
  });
  await page.waitForFunction(() => window.received.length >= 2, null, { timeout: STEP_MS });
  return page.evaluate(() => window.received.slice());
}

async function main() {
  const browser = await launch();
  const context = await browser.newContext({ viewport: { width: 860, height: 640 } });

  {
    const { page, seen } = await openPage(context, "");
    await waitOpenOn(page, "webtransport");
    const sid = await page.evaluate(() => window.socket.id);
    const received = await echo(page);
    await page.screenshot({ path: SCREENSHOT });
    await page.evaluate(() => window.socket.send("disconnect me"));
    const closed = await waitClosed(page);
    emit({ scenario: "direct", sid, received, closed, pageErrors: seen.pageErrors });
    await page.close();
  }
  {
    const { page, seen } = await openPage(context, "?upgrade=1");
    await page.waitForFunction(() => window.socket && window.socket.id, null, { timeout: STEP_MS });
    await waitOpenOn(page, "webtransport");
    const first = await page.evaluate(() => window.transports[0]);
    const sid = await page.evaluate(() => window.socket.id);
    const received = await echo(page);
    await page.evaluate(() => window.socket.close());
    const closed = await waitClosed(page);
    emit({ scenario: "upgrade", sid, first, received, closed, pageErrors: seen.pageErrors });
    await page.close();
  }
  {
    const { page, seen } = await openPage(context, "");
    await waitOpenOn(page, "webtransport");
    const sid = await page.evaluate(() => window.socket.id);
    // nothing the page writes leaves any more: its pongs included
    await page.evaluate(() => {
      window.socket.transport.write = () => {};
    });
    const closed = await waitClosed(page);
    emit({ scenario: "timeout", sid, closed, pageErrors: seen.pageErrors });
    await page.close();
  }
  {
    const { page: first } = await openPage(context, "");
    await waitOpenOn(first, "webtransport");
    const { page, seen } = await openPage(context, "");
    const closed = await waitClosed(page);
    const opened = await page.evaluate(() => window.transports.length > 0);
    emit({ scenario: "refused", closed, opened, console: seen.console, pageErrors: seen.pageErrors });
    await page.close();
    await first.close();
  }
  await finish({ ok: true }, 0);
}

main().catch((err) => finish({ ok: false, error: String(err && err.stack ? err.stack : err) }, 1));
