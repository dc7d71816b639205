// Debian's Chromium, headless, through playwright-core: the one launch every browser
// driver in tests/browser uses. CHROMIUM overrides the executable. The flags keep a
// closed network quiet (no background fetches, no component updates, no sync); QUIC
// stays on, for WebTransport.
"use strict";

const path = require("node:path");

const ROOT = path.join(__dirname, "..", "..");

// A package from the project's node_modules, also when the driver runs from elsewhere.
function requireFromProject(name) {
  try {
    return require(name);
  } catch (err) {
    return require(path.join(ROOT, "node_modules", name));
  }
}

const { chromium } = requireFromProject("playwright-core");

const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";
const LAUNCH_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

function launch() {
  return chromium.launch({ executablePath: EXECUTABLE, args: LAUNCH_ARGS, timeout: 30000 });
}

// A driver's run: JSON lines out (emit), one final report (finish: closes the browser it
// launched and exits with code), and a hard limit on the whole run.
function run(hardLimitMs) {
  let browser = null;
  let finished = false;
  const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
  const finish = async (report, code) => {
    if (finished) return;
    finished = true;
    clearTimeout(hardTimer);
    emit(report);
    try {
      if (browser) await browser.close();
    } catch (e) {
      // the browser is gone already
    }
    process.exit(code);
  };
  const hardTimer = setTimeout(() => finish({ ok: false, error: `hard limit of ${hardLimitMs} ms` }, 2), hardLimitMs);
  process.on("SIGTERM", () => finish({ ok: false, error: "terminated" }, 3));
  const launchOnce = async () => {
    browser = await launch();
    return browser;
  };
  return { emit, finish, launch: launchOnce };
}

module.exports = { ROOT, launch, requireFromProject, run };
