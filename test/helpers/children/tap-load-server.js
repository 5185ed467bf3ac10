// The server of test/netns/tap-load.test.ts, a process of its own so that it can be pinned to a
// CPU (taskset). An HTTP server listening through toa.listen with the ACK tap; each request
// checks realRemoteAddress(req.socket) against the TOA a ToaCgroup client writes for its source
// port (base with the port's low byte, and the port). With `--lookup connection` the address is
// asked for at accept time (the 'connection' event) and the handler gets the cached answer: for
// TOA in the handshake ACK that is the tightest race with the tap. With `--untrusted A`, the server
// trusts 127.0.0.1 only, and a connection from A must be answered with A itself, whatever TOA its
// packets carry (`untrusted`). Prints {"port":N} once listening; on a "report" line on stdin (or at
// the lifetime limit) prints the counts and toa.stats(), then exits.
//
//   node tap-load-server.js [--base 198.51.100.0] [--kind 254] [--lookup request|connection]
//                           [--untrusted 127.0.0.2] [--lifetime-ms 300000]
'use strict';
const http = require('node:http');
const path = require('node:path');
const readline = require('node:readline');

const DIST = path.join(__dirname, '..', '..', '..', 'dist', 'index.js');
const toa = require(DIST);

const argv = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};
const base = arg('--base', '198.51.100.0').split('.').map(Number);
const kind = Number(arg('--kind', '254'));
const lookup = arg('--lookup', 'request');
const lifetimeMs = Number(arg('--lifetime-ms', '300000'));
const untrusted = arg('--untrusted', undefined);
// One object for every request: the resolver compiles it once.
const options = { trustProxy: untrusted === undefined ? 'loopback' : '127.0.0.1', kinds: [kind] };

const counts = { requests: 0, toa: 0, untrusted: 0, peer: 0, wrong: 0 };
const samples = { peer: [], wrong: [] }; // a few, to show what a miss looked like

function expectedAddress(port) {
  return `${base[0]}.${base[1]}.${base[2]}.${port & 0xff}`;
}

/** Counts an answer that is not the one expected (`peer`: a miss; `wrong`), and keeps a few. */
function miss(kind, port, answer) {
  counts[kind]++;
  if (samples[kind].length < 5) samples[kind].push({ remotePort: port, answer });
}

function handler(req, res) {
  counts.requests++;
  const port = req.socket.remotePort;
  const a = toa.realRemoteAddress(req.socket, options);
  // Node's own remoteAddress (nothing is installed): the L3 peer.
  if (untrusted !== undefined && req.socket.remoteAddress === untrusted) {
    if (a.source === 'peer' && a.address === untrusted && a.port === port) counts.untrusted++;
    else miss('wrong', port, a);
  } else if (a.source === 'toa' && a.address === expectedAddress(port) && a.port === port) counts.toa++;
  else miss(a.source === 'peer' ? 'peer' : 'wrong', port, a);
  res.end('ok');
}

function report() {
  const { taps, ...stats } = toa.stats();
  // Of each tap, what its lookups needed besides memory: storage lookups, and connections unseen.
  const lookups = taps.map(({ source, lookups, storageLookups, unseen }) => ({ source, lookups, storageLookups, unseen }));
  process.stdout.write(`${JSON.stringify({ ...counts, samples, stats, taps: lookups })}\n`, () => process.exit(0));
}

async function main() {
  const server = http.createServer(handler);
  server.keepAliveTimeout = 1000;
  if (lookup === 'connection') server.on('connection', (socket) => toa.realRemoteAddress(socket, options));
  else if (lookup !== 'request') throw new Error(`--lookup must be request or connection, got '${lookup}'`);
  // The tap's trust list is the resolver's: the program keeps nothing of anyone else.
  await toa.listen(server, { port: 0, host: '127.0.0.1', ack: true, trustProxy: options.trustProxy });
  process.stdout.write(`${JSON.stringify({ port: server.address().port, pid: process.pid })}\n`);
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'report') report();
  });
  // Bounded even if the test never asks, or died: stdin EOF or the lifetime limit ends it.
  process.stdin.on('end', () => process.exit(0));
  setTimeout(report, lifetimeMs).unref();
}

main().catch((error) => {
  process.stderr.write(`tap-load-server: ${error && error.stack}\n`);
  process.exit(1);
});
