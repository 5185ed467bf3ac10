// node examples/koa.js — a Koa app that prints the real client of every request.
//   PORT (default 3000), HOST (default: every address), TRUST_PROXY: your L4 proxy's addresses
//   or CIDR ranges, comma-separated (default 127.0.0.1, to try it on this machine).
'use strict';
const http = require('node:http');
const Koa = require('koa');
const toa = require('node-toa');
const toaKoa = require('node-toa/koa');

const app = new Koa();
app.use(toaKoa({ trustProxy: process.env.TRUST_PROXY || '127.0.0.1', setIp: true }));

app.use((ctx) => {
  const client = ctx.realRemoteAddress();
  const via = client.proxy ? ` via ${client.proxy.address}` : '';
  console.log(`${ctx.method} ${ctx.url} from ${client.address}:${client.port} (${client.source}${via})`);
  ctx.body = `hello ${client.address}:${client.port} (${client.source})\n`;
});

toa.listen(http.createServer(app.callback()), { port: process.env.PORT || 3000, host: process.env.HOST }).then((server) => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
