// node examples/http.js — a plain node:http server that prints the real client of every request.
//   PORT (default 3000), HOST (default: every address), TRUST_PROXY: your L4 proxy's addresses
//   or CIDR ranges, comma-separated (default 127.0.0.1, to try it on this machine).
'use strict';
const http = require('node:http');
const toa = require('node-toa');
require('node-toa/register'); // socket.realRemoteAddress() on every socket

toa.configure({ trustProxy: process.env.TRUST_PROXY || '127.0.0.1' });

const server = http.createServer((req, res) => {
  const client = req.socket.realRemoteAddress(); // the same as toa.realRemoteAddress(req.socket)
  const via = client.proxy ? ` via ${client.proxy.address}` : '';
  console.log(`${req.method} ${req.url} from ${client.address}:${client.port} (${client.source}${via})`);
  res.end(`hello ${client.address}:${client.port} (${client.source})\n`);
});

toa.listen(server, { port: process.env.PORT || 3000, host: process.env.HOST }).then(() => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
