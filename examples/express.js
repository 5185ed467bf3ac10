// node examples/express.js — an Express app that prints the real client of every request.
//   PORT (default 3000), HOST (default: every address), TRUST_PROXY: your L4 proxy's addresses
//   or CIDR ranges, comma-separated (default 127.0.0.1, to try it on this machine).
'use strict';
const http = require('node:http');
const express = require('express');
const toa = require('node-toa');
const { toaMiddleware } = require('node-toa/express');

const app = express();
app.use(toaMiddleware({ trustProxy: process.env.TRUST_PROXY || '127.0.0.1', setIp: true }));

app.use((req, res) => {
  const client = req.realRemoteAddress();
  const via = client.proxy ? ` via ${client.proxy.address}` : '';
  console.log(`${req.method} ${req.url} from ${client.address}:${client.port} (${client.source}${via})`);
  res.send(`hello ${client.address}:${client.port} (${client.source})\n`);
});

// toa.listen, not app.listen: the socket saves SYNs from before its first connection.
toa.listen(http.createServer(app), { port: process.env.PORT || 3000, host: process.env.HOST }).then((server) => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
