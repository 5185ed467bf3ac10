// node examples/proxy-protocol.js — a node:http server behind a load balancer that sends the PROXY
// protocol (HAProxy send-proxy/send-proxy-v2, nginx stream proxy_protocol on, AWS NLB, Alibaba
// CLB/NLB, Tencent CLB, Huawei ELB) and prints the client of every request.
//   PORT (default 3000), HOST (default: every address), TRUST_PROXY: the balancer's addresses or
//   CIDR ranges (default 127.0.0.1, to try it here: curl --haproxy-protocol http://127.0.0.1:3000/),
//   PROXY_PROTOCOL: required (default) or optional (a trusted peer may also connect without one).
'use strict';
const http = require('node:http');
const toa = require('node-toa');

const trustProxy = process.env.TRUST_PROXY || '127.0.0.1';
const mode = process.env.PROXY_PROTOCOL || 'required';

const server = http.createServer((req, res) => {
  const client = toa.realRemoteAddress(req.socket, { trustProxy });
  const via = client.proxy ? ` via ${client.proxy.address}` : '';
  const pp = client.proxyProtocol ? ` v${client.proxyProtocol.version} ${client.proxyProtocol.command}` : '';
  console.log(`${req.method} ${req.url} from ${client.address}:${client.port} (${client.source}${via}${pp})`);
  res.end(`hello ${client.address}:${client.port} (${client.source})\n`);
});

// The header is read below HTTP: the server only ever sees the bytes after it.
toa.listen(server, { port: process.env.PORT || 3000, host: process.env.HOST, proxyProtocol: mode, trustProxy }).then(() => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
