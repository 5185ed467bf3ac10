// HTTP clients that start later, for tap-edges.test.ts: the test starts this process (inside
// the namespace), then blocks its own event loop; after `delayMs` this process opens one
// `Connection: close` GET per entry of `clients` (a local address), all at once, and prints one
// JSON line: [{ localAddress, localPort, status, body } | { localAddress, error }, ...].
// Bounded: every request at most timeoutMs.
//
//   node delayed-http-client.js '{"host":"198.51.100.10","port":N,"clients":["192.0.2.1"],"delayMs":1500,"timeoutMs":20000}'
'use strict';
const http = require('node:http');

const o = JSON.parse(process.argv[2] || '{}');
if (!o.host || !o.port || !Array.isArray(o.clients)) throw new Error('delayed-http-client: host, port and clients are required');

function one(localAddress) {
  return new Promise((resolve) => {
    let local = null;
    const req = http.get({ host: o.host, port: o.port, path: '/', localAddress, agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d));
      res.on('end', () => resolve({ ...local, status: res.statusCode, body }));
    });
    req.on('socket', (s) => s.on('connect', () => (local = { localAddress: s.localAddress, localPort: s.localPort })));
    req.setTimeout(o.timeoutMs || 20000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ localAddress, error: e.message }));
  });
}

setTimeout(async () => {
  const results = await Promise.all(o.clients.map(one));
  process.stdout.write(`${JSON.stringify(results)}\n`);
}, o.delayMs || 0);
