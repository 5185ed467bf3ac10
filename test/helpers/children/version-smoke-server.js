// The package as an app uses it, under whichever Node runs this file (test/netns/node-versions.test.ts
// runs it under each binary of scripts/node-matrix.js): CommonJS and ESM loads, an HTTP server
// with enable(), and a Fastify app with the plugin answering fastify.inject. Prints one JSON line
//   {"version","napi","support","esmSame","port","inject"}
// then answers each request with realRemoteAddress(req.socket) until its stdin closes.
//
//   node version-smoke-server.js [FASTIFY_MODULE]   (default 'fastify'; 'fastify4' on Node 18,
//   where Fastify 5's inject cannot load: light-my-request 6 require()s an ES module)
'use strict';
const http = require('node:http');
const toa = require('node-toa');
const { fastifyInject } = require('./fastify-inject.cjs');

const OPTIONS = { trustProxy: 'loopback', kinds: [254] };


async function main() {
  const esm = await import('node-toa');
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(toa.realRemoteAddress(req.socket, OPTIONS)));
  });
  toa.enable(server);
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const inject = await fastifyInject(process.argv[2] || 'fastify', OPTIONS);
  const line = {
    version: process.version,
    napi: process.versions.napi,
    support: toa.support(),
    esmSame: esm.realRemoteAddress === toa.realRemoteAddress,
    port: server.address().port,
    inject,
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  process.stdin.on('end', () => server.close(() => process.exit(0)));
  process.stdin.resume();
}

main().catch((e) => {
  process.stderr.write(`version-smoke-server: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
