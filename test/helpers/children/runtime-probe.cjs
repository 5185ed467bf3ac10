// What the package does under another runtime (test/netns/runtimes.test.ts runs this under Bun and
// Deno, and under Node as the reference). `.cjs` because Deno reads a `.js` file as an ES module
// when no package.json says otherwise. Prints one JSON line of facts:
//   {"runtime","cjs","esmSame","support","channels","entries","inject","ports":{"net","http"}}
// then serves until stdin closes: on `ports.net` a net.Server that answers any request with a
// bare HTTP response, on `ports.http` an http.Server; both enable()d, both answering
//   {"answer": realRemoteAddress(socket), "fd": the socket's _handle.fd, "listeningFd", "resolveMessages"}
'use strict';
const dc = require('node:diagnostics_channel');
const http = require('node:http');
const net = require('node:net');
const toa = require('node-toa');
const { fastifyInject } = require('./fastify-inject.cjs');

const OPTIONS = { trustProxy: 'loopback', kinds: [254] };

function runtime() {
  if (process.versions.bun) return { name: 'bun', version: process.versions.bun };
  if (process.versions.deno) return { name: 'deno', version: process.versions.deno };
  return { name: 'node', version: process.versions.node };
}

const fdOf = (o) => {
  const fd = o && o._handle ? o._handle.fd : undefined;
  return typeof fd === 'number' ? fd : String(fd);
};

async function tryThis(fn) {
  try {
    return await fn();
  } catch (e) {
    return { error: `${e && e.name}: ${e && e.message}` };
  }
}

// Fastify 5's inject cannot load on Node 18 (it require()s an ES module); Fastify 4's can.
const FASTIFY = Number(process.versions.node.split('.')[0]) < 20 ? 'fastify4' : 'fastify';

async function main() {
  const warnings = [];
  let resolveMessages = 0;
  // Subscribed before anything of ours runs, so a runtime whose channels work delivers every message.
  const onWarning = (m) => warnings.push(m.code);
  const onResolve = () => resolveMessages++;
  dc.subscribe('node-toa:warning', onWarning);
  dc.subscribe('node-toa:resolve', onResolve);
  const processWarnings = [];
  process.on('warning', (w) => processWarnings.push(w.code));

  const esm = await tryThis(() => import('node-toa'));
  const entries = {
    express: await tryThis(() => typeof require('node-toa/express').toaMiddleware),
    fastify: await tryThis(() => typeof require('node-toa/fastify')),
    esmFastify: await tryThis(async () => typeof (await import('node-toa/fastify')).default),
  };

  const reply = (socket, listening) =>
    JSON.stringify({ answer: toa.realRemoteAddress(socket, OPTIONS), fd: fdOf(socket), listeningFd: fdOf(listening), resolveMessages });
  const netServer = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => {
      const body = reply(socket, netServer);
      socket.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
  });
  const httpServer = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(reply(req.socket, httpServer));
  });
  toa.enable(netServer);
  toa.enable(httpServer);
  const listen = (s) => new Promise((resolve, reject) => s.once('error', reject).listen(0, '127.0.0.1', resolve));
  await listen(netServer);
  await listen(httpServer);
  const inject = await tryThis(() => fastifyInject(FASTIFY, OPTIONS));
  // Let an asynchronous 'warning' event of enable() arrive before the report.
  await new Promise((resolve) => setTimeout(resolve, 50));

  const line = {
    runtime: runtime(),
    cjs: typeof toa.realRemoteAddress,
    esmSame: esm.error ? esm : esm.realRemoteAddress === toa.realRemoteAddress,
    support: toa.support(),
    channels: { warning: warnings, processWarning: processWarnings },
    entries,
    inject,
    listeningFd: { net: fdOf(netServer), http: fdOf(httpServer) },
    ports: { net: netServer.address().port, http: httpServer.address().port },
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  process.stdin.on('end', () => {
    netServer.close();
    httpServer.close();
    process.exit(0);
  });
  process.stdin.resume();
}

main().catch((e) => {
  process.stderr.write(`runtime-probe: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
