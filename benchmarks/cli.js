// What the load generators share: their arguments, their JSON lines, and marks that
// wait for the harness's "continue" (with --sync 1) so it can sample the server.
'use strict';

const readline = require('readline');

// "--name value" and "--name=value" pairs; num(name, default) reads a number.
function parseArgs(argv = process.argv.slice(2)) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) args[a.slice(2, eq)] = a.slice(eq + 1);
    else args[a.slice(2)] = argv[++i];
  }
  const num = (k, d) => (args[k] === undefined ? d : Number(args[k]));
  return { args, num };
}

// One JSON object per line on stdout (pipes are synchronous on Linux).
function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// mark(name, extra) prints {"event":"mark",...}; with sync it then waits (up to 15 s)
// for a line "continue" on stdin, one per mark, in order.
function marker(sync) {
  const waiters = [];
  if (sync) {
    readline.createInterface({ input: process.stdin }).on('line', (line) => {
      if (line.trim() === 'continue' && waiters.length) waiters.shift()();
    });
  }
  return async function mark(name, extra) {
    emit({ event: 'mark', name, ...extra });
    if (!sync) return;
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ack for mark ${name}`)), 15000);
      waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  };
}

// bounded-concurrency map over 0..n-1: open(i) for each, at most `concurrency` at a time
async function openMany(n, concurrency, open) {
  const out = new Array(n);
  let next = 0;
  async function worker() {
    while (next < n) {
      const i = next++;
      out[i] = await open(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

module.exports = { parseArgs, emit, marker, openMany };
