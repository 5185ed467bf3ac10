// The legitimate clients of flood.test.ts: `count` connections one after another to
// host:port, each one `Connection: close` HTTP request whose JSON answer (remote-echo-app.js) says
// what the server saw as remoteAddress:remotePort. Run inside a ToaCgroup: its kernel writes the
// TOA base.<source port & 0xff>:<source port> (sockops.ts `expected()`), so each answer is sorted
// as `client` (that TOA), `peer` (the L3 peer: the proxy, i.e. this client's own address and port)
// or `wrong` (anything else, such as another connection's client). Prints one JSON line:
//   { count, client, peer, wrong, failures, errors, samples: { peer, wrong }, elapsedMs, timedOut }
// Bounded: each connection at most connTimeoutMs, the whole run at most timeoutMs.
//
//   node remote-check-client.js --port N [--host 127.0.0.1] [--count 300] [--base 198.51.100.0]
//                               [--timeout-ms 40000] [--conn-timeout-ms 5000]
'use strict';
const net = require('node:net');

const o = { host: '127.0.0.1', port: 0, count: 300, base: '198.51.100.0', timeoutMs: 40000, connTimeoutMs: 5000 };
const names = { '--host': 'host', '--port': 'port', '--count': 'count', '--base': 'base', '--timeout-ms': 'timeoutMs', '--conn-timeout-ms': 'connTimeoutMs' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = names[argv[i]];
  if (!key || argv[i + 1] === undefined) throw new Error(`remote-check-client: bad argument '${argv[i]}'`);
  o[key] = key === 'host' || key === 'base' ? argv[i + 1] : Number(argv[i + 1]);
}
if (!(o.port > 0 && o.port < 65536)) throw new Error('remote-check-client: --port is required');
const base = o.base.split('.').map(Number);

const t0 = Date.now();
const result = { count: 0, client: 0, peer: 0, wrong: 0, failures: 0, errors: {}, samples: { peer: [], wrong: [] } };

function one() {
  return new Promise((resolve) => {
    const socket = net.connect({ host: o.host, port: o.port });
    let body = '';
    let settled = false;
    let local = null; // read at connect: a closed socket no longer knows its address
    const fail = (why) => {
      if (settled) return;
      settled = true;
      result.failures++;
      result.errors[why] = (result.errors[why] || 0) + 1;
      socket.destroy();
      resolve();
    };
    socket.setEncoding('latin1');
    socket.setTimeout(o.connTimeoutMs, () => fail('timeout'));
    socket.on('connect', () => {
      local = { address: socket.localAddress, port: socket.localPort };
      socket.write(`GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (d) => (body += d));
    socket.on('error', (e) => fail(e.code || e.message));
    socket.on('close', () => {
      if (settled) return;
      settled = true;
      if (local === null) {
        result.failures++;
        result.errors['closed before connecting'] = (result.errors['closed before connecting'] || 0) + 1;
        return resolve();
      }
      const port = local.port;
      let seen;
      try {
        seen = JSON.parse(body.slice(body.indexOf('\r\n\r\n') + 4));
      } catch {
        result.failures++;
        result.errors['bad answer'] = (result.errors['bad answer'] || 0) + 1;
        return resolve();
      }
      const expected = `${base[0]}.${base[1]}.${base[2]}.${port & 0xff}`;
      if (seen.remoteAddress === expected && seen.remotePort === port) result.client++;
      else if (seen.remoteAddress === local.address && seen.remotePort === port) {
        result.peer++;
        if (result.samples.peer.length < 5) result.samples.peer.push({ localPort: port, seen });
      } else {
        result.wrong++;
        if (result.samples.wrong.length < 5) result.samples.wrong.push({ localPort: port, expected, seen });
      }
      resolve();
    });
  });
}

async function main() {
  let timedOut = false;
  const deadline = t0 + o.timeoutMs;
  for (let i = 0; i < o.count; i++) {
    if (Date.now() >= deadline) {
      timedOut = true;
      break;
    }
    await one();
    result.count++;
  }
  process.stdout.write(`${JSON.stringify({ ...result, elapsedMs: Date.now() - t0, timedOut })}\n`);
}

main().catch((e) => {
  process.stderr.write(`remote-check-client: ${e && e.stack}\n`);
  process.exit(1);
});
