#!/usr/bin/env node
// Drives headless Chromium for benchmarks/webtransport/run.py: for each run given on the
// command line (websocket or webtransport), opens the page and calls run(); prints one
// JSON line per run. Usage: node drive.js URL ROUNDS TOTAL WINDOW TRANSPORT...
"use strict";
const path = require("node:path");
let chromium;
try {
  ({ chromium } = require("playwright-core"));
} catch (err) {
  ({ chromium } = require(path.join(__dirname, "..", "..", "node_modules", "playwright-core")));
}
const [url, rounds, total, win, ...transports] = process.argv.slice(2);
(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    timeout: 30000,
  });
  try {
    for (const transport of transports) {
      const page = await browser.newPage();
      await page.goto(url);
      const result = await page.evaluate(
        ([t, r, n, w]) => window.run(t, r, n, w),
        [transport, Number(rounds), Number(total), Number(win)],
      );
      process.stdout.write(JSON.stringify(result) + "\n");
      await page.close();
    }
  } finally {
    await browser.close();
  }
})().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
