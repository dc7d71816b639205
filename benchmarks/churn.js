// Used by rss_churn.sh. node churn.js PORT N M C: open N websocket sessions on 127.0.0.1, C at a
// time; each sends M messages, one after the other's echo, then closes. Prints DONE.
const WebSocket = require('ws');
const [port, N, M, C] = process.argv.slice(2).map(Number);
let started = 0, finished = 0, active = 0;
function one() {
  started++; active++;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/engine.io/?EIO=4&transport=websocket`, { perMessageDeflate: false });
  let got = 0;
  ws.on('message', (d) => {
    d = d.toString();
    if (d[0] === '0') ws.send('4hello' + got);
    else if (d === '2') ws.send('3');
    else if (d[0] === '4') { if (++got < M) ws.send('4hello' + got); else ws.close(1000); }
  });
  const done = () => { if (ws._done) return; ws._done = true; finished++; active--; if (started < N) one(); else if (finished === N) { console.log('DONE'); process.exit(0); } };
  ws.on('close', done); ws.on('error', done);
}
for (let i = 0; i < Math.min(C, N); i++) one();
setTimeout(() => { console.log('TIMEOUT', finished); process.exit(1); }, 300000);
