// node:cluster with a dgram app (test/helpers/children/udp-echo-app.js's echo, in each worker): the primary
// picks a free port and forks WORKERS workers that all bind it (cluster shares the primary's
// socket among them). Run with -r node-toa/preload and NODE_TOA_UDP in the environment: the
// workers inherit both. Prints {"port": N, "workers": [pids]} once every worker is bound; stops
// when stdin closes.
'use strict';
const cluster = require('node:cluster');
const dgram = require('node:dgram');

const WORKERS = Number(process.env.UDP_WORKERS || 2);

if (cluster.isPrimary) {
  const probe = dgram.createSocket('udp4');
  probe.bind(0, '127.0.0.1', () => {
    const port = probe.address().port;
    probe.close(() => {
      const pids = [];
      for (let i = 0; i < WORKERS; i++) {
        const worker = cluster.fork({ UDP_PORT: String(port) });
        worker.on('message', (m) => {
          if (m !== 'bound') return;
          pids.push(worker.process.pid);
          if (pids.length === WORKERS) process.stdout.write(`${JSON.stringify({ port, workers: pids })}\n`);
        });
      }
    });
  });
  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const w of Object.values(cluster.workers)) w.kill();
    process.exit(0);
  });
} else {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    socket.send(`${process.pid} ${rinfo.address} ${rinfo.port} ${rinfo.source || 'node'} ${msg}`, rinfo.port, rinfo.address);
  });
  socket.bind(Number(process.env.UDP_PORT), '127.0.0.1', () => process.send('bound'));
}
