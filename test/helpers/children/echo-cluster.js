// An unmodified node:cluster app for shared-program.test.ts: it knows nothing of node-toa (the test
// starts it with `node -r dist/preload.js`, which its workers inherit). WORKERS workers (default
// 3, round-robin), each a node:http server on one port (PORT, default 0: the primary picks one for
// all) answering as remote-echo-app.js does: req.socket.remoteAddress and remotePort, as JSON.
// Prints JSON lines: { ready, port, workers: [pid...] } once every worker listens; for a stdin
// line "close <pid>", that worker closes its server and exits, then { closed: pid }. Ends with its
// stdin, and never outlives 60 s.
'use strict';
const cluster = require('node:cluster');
const http = require('node:http');
const readline = require('node:readline');

if (cluster.isPrimary) {
  const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
  const count = Number(process.env.WORKERS || 3);
  let listening = 0;
  let port = 0;
  for (let i = 0; i < count; i++) {
    const worker = cluster.fork();
    worker.on('listening', (address) => {
      port = address.port;
      if (++listening === count) say({ ready: true, port, workers: Object.values(cluster.workers).map((w) => w.process.pid) });
    });
    worker.on('exit', () => say({ closed: worker.process.pid }));
  }
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const m = /^close (\d+)$/.exec(line.trim());
    const worker = m && Object.values(cluster.workers).find((w) => w.process.pid === Number(m[1]));
    if (worker) worker.send('close');
  });
  const stop = () => {
    for (const w of Object.values(cluster.workers)) w.process.kill();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.stdin.on('end', stop);
  setTimeout(stop, 60_000).unref();
} else {
  const server = http.createServer((req, res) => {
    const { remoteAddress, remotePort } = req.socket;
    res.setHeader('connection', 'close');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ remoteAddress, remotePort }));
  });
  server.listen(Number(process.env.PORT || 0), '127.0.0.1');
  process.on('message', (m) => {
    if (m === 'close') server.close(() => process.exit(0));
  });
}
