// The client of test/netns/preload-apps.test.ts, run inside a ToaCgroup (so its kernel writes TOA into
// its connections) or outside it (no TOA). One JSON argument:
//   { kind: 'http' | 'https' | 'h2' | 'ws', port, host?, path?, ca? (PEM file),
//     connections: [{ requests, localPort? }] }
// Each connection is one TCP connection (keep-alive) carrying `requests` requests, in turn.
// Prints one JSON line: [{ localPort, responses: [{ status, headers, body }] }]. Bounded: every
// connection times out after 10 s, the whole run after 30 s.
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const http2 = require('node:http2');

const spec = JSON.parse(process.argv[2]);
const host = spec.host ?? '127.0.0.1';
const path = spec.path ?? '/';
const ca = spec.ca ? fs.readFileSync(spec.ca) : undefined;
setTimeout(() => {
  process.stderr.write('preload-client: timed out after 30 s\n');
  process.exit(2);
}, 30_000).unref();

function http1(connection) {
  const mod = spec.kind === 'https' ? https : http;
  const agent = new mod.Agent({ keepAlive: true, maxSockets: 1, ...(ca ? { ca } : {}) });
  const result = { localPort: 0, responses: [] };
  const one = () =>
    new Promise((resolve, reject) => {
      const req = mod.get({ host, port: spec.port, path, agent, localPort: connection.localPort, timeout: 10_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d) => (body += d));
        res.on('end', () => {
          result.localPort = req.socket.localPort;
          result.responses.push({ status: res.statusCode, headers: res.headers, body });
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
    });
  return (async () => {
    for (let i = 0; i < connection.requests; i++) await one();
    agent.destroy();
    return result;
  })();
}

function h2(connection) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${host}:${spec.port}`, { ca, localPort: connection.localPort });
    session.setTimeout(10_000, () => session.destroy(new Error('session timed out')));
    session.on('error', reject);
    const result = { localPort: 0, responses: [] };
    const one = () =>
      new Promise((res, rej) => {
        const stream = session.request({ ':path': path });
        let headers;
        let body = '';
        stream.on('response', (h) => (headers = h));
        stream.setEncoding('utf8').on('data', (d) => (body += d));
        stream.on('end', () => {
          result.localPort = session.socket.localPort;
          result.responses.push({ status: headers[':status'], headers, body });
          res();
        });
        stream.on('error', rej);
      });
    (async () => {
      for (let i = 0; i < connection.requests; i++) await one();
      session.close();
      resolve(result);
    })().catch(reject);
  });
}

function ws(connection) {
  const WebSocket = require('ws');
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://${host}:${spec.port}${path}`, { localPort: connection.localPort, handshakeTimeout: 10_000 });
    socket.on('error', reject);
    socket.once('message', (data) => {
      resolve({ localPort: socket._socket.localPort, responses: [{ status: 101, headers: {}, body: data.toString() }] });
      socket.close();
    });
  });
}

const run = { http: http1, https: http1, h2, ws }[spec.kind];
(async () => {
  const out = [];
  for (const c of spec.connections) out.push(await run(c));
  process.stdout.write(`${JSON.stringify(out)}\n`);
})().catch((error) => {
  process.stderr.write(`preload-client: ${error.stack}\n`);
  process.exit(1);
});
