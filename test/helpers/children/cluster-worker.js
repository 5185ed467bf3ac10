// A node:cluster worker for test/netns/cluster.test.ts (see cluster-primary.js for the config). Serves
// GET / with { pid, real: <realRemoteAddress()> } and reports its warnings to the primary.
'use strict';
const http = require('node:http');
const toa = require('node-toa');

const config = JSON.parse(process.argv[2]);
const trustProxy = ['198.51.100.2', '2001:db8:b::2'];

process.on('warning', (w) => process.send({ warning: { pid: process.pid, code: w.code, message: w.message } }));

function handler() {
  if (config.app === 'express') {
    const express = require('express');
    const { toaMiddleware } = require('node-toa/express');
    const app = express();
    app.use(toaMiddleware({ trustProxy }));
    app.get('/', (req, res) => res.json({ pid: process.pid, real: req.realRemoteAddress() }));
    return app;
  }
  return (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ pid: process.pid, real: toa.realRemoteAddress(req.socket, { trustProxy }) }));
  };
}

async function main() {
  const server = http.createServer(handler());
  if (config.listen === 'toa') {
    // Each worker its own listening socket: SO_REUSEPORT is the default in a worker.
    await toa.listen(server, { port: config.port });
  } else {
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, resolve);
    });
  }
  process.send({ listening: true, pid: process.pid, port: server.address().port });
}

main().catch((error) => process.send({ error: String(error && error.stack) }));
