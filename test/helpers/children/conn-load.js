// A load client: `count` fresh TCP connections to host:port, `parallel` at once, each sending one
// `Connection: close` HTTP request and reading the whole response. Prints one JSON line:
//   { count, ok, failures, errors, elapsedMs, perSecond, timedOut }
// Run it inside a ToaCgroup so that its kernel tags each connection. Bounded: at most `count`
// connections, each at most connTimeoutMs, and the whole run at most timeoutMs.
//
//   node conn-load.js --port N [--host 127.0.0.1] [--count 1000] [--parallel 32]
//                     [--timeout-ms 120000] [--conn-timeout-ms 10000] [--local-address 127.0.0.2]
'use strict';
const net = require('node:net');

function options(argv) {
  const o = { host: '127.0.0.1', port: 0, count: 1000, parallel: 32, timeoutMs: 120000, connTimeoutMs: 10000, localAddress: undefined };
  const names = {
    '--host': 'host',
    '--port': 'port',
    '--count': 'count',
    '--parallel': 'parallel',
    '--timeout-ms': 'timeoutMs',
    '--conn-timeout-ms': 'connTimeoutMs',
    '--local-address': 'localAddress',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || argv[i + 1] === undefined) throw new Error(`conn-load: bad argument '${argv[i]}'`);
    o[key] = key === 'host' || key === 'localAddress' ? argv[i + 1] : Number(argv[i + 1]);
  }
  if (!(o.port > 0 && o.port < 65536)) throw new Error('conn-load: --port is required');
  return o;
}

const o = options(process.argv.slice(2));
const REQUEST = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
const t0 = process.hrtime.bigint();
let started = 0;
let done = 0;
let ok = 0;
let failures = 0;
const errors = {}; // reason -> count, so one line says what went wrong
let finished = false;

function fail(reason) {
  failures++;
  errors[reason] = (errors[reason] || 0) + 1;
}

function report(timedOut) {
  if (finished) return;
  finished = true;
  const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const summary = { count: done, ok, failures, errors, elapsedMs: Math.round(elapsedMs), perSecond: Math.round((done * 1000) / elapsedMs), timedOut };
  process.stdout.write(`${JSON.stringify(summary)}\n`, () => process.exit(timedOut ? 2 : 0));
}

function one() {
  started++;
  const socket = net.connect({ host: o.host, port: o.port, localAddress: o.localAddress });
  let response = '';
  let failed = false;
  socket.setEncoding('latin1');
  socket.setTimeout(o.connTimeoutMs, () => {
    failed = true;
    fail('timeout');
    socket.destroy();
  });
  socket.on('connect', () => socket.write(REQUEST));
  socket.on('data', (d) => (response += d));
  socket.on('error', (e) => {
    if (!failed) fail(e.code || e.message);
    failed = true;
  });
  socket.on('close', () => {
    done++;
    if (!failed) {
      if (response.startsWith('HTTP/1.1 200 ')) ok++;
      else fail(`status ${response.slice(9, 12) || 'none'}`);
    }
    next();
  });
}

function next() {
  if (finished) return;
  if (started < o.count) one();
  else if (done === o.count) report(false);
}

setTimeout(() => report(true), o.timeoutMs).unref();
for (let i = 0; i < Math.min(o.parallel, o.count); i++) next();
