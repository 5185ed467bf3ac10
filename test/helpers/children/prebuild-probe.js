// Runs under the Node (or qemu-user Node) of test/build/prebuilds.test.ts: loads one prebuild by path and
// answers, as one JSON line, what the test compares: the parser on the given byte vectors, the
// record writer, one real loopback connection's saved SYN, and the package's answer on it (from
// dist/, with NODE_TOA_ADDON set to the same prebuild by the test). Plain JS: no ts-jest here.
'use strict';
const net = require('node:net');
const fs = require('node:fs');

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const binding = require(job.addon);
const toa = require(job.dist);
const table = (bytes) => new Uint8Array(bytes);

const out = {
  arch: process.arch,
  savedSynSupported: binding.savedSynSupported,
  support: toa.support(),
  maps: fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.endsWith('.node')).map((l) => l.split(/\s+/).pop()).filter((f, i, all) => all.indexOf(f) === i),
  parse: job.vectors.map((v) => binding.testing.parse(new Uint8Array(v.packet), table(v.table))),
  records: job.records.map((r) => {
    const record = new Uint8Array(binding.recordLayout.size);
    binding.testing.record(new Uint8Array(r.packet), table(r.table), record);
    return Array.from(record);
  }),
};

const server = toa.enable(net.createServer({ pauseOnConnect: true }));
const timer = setTimeout(() => {
  console.log(JSON.stringify({ ...out, error: 'no loopback connection within 20 s' }));
  process.exit(1);
}, 20_000);
server.listen(0, '127.0.0.1', () => {
  const listenFd = server._handle.fd;
  const client = net.connect(server.address().port, '127.0.0.1');
  server.once('connection', (socket) => {
    // The raw read first (a fresh socket's SYN is still saved), then the package's own answer.
    out.getSaveSyn = binding.getSaveSyn(listenFd);
    out.lookup = binding.testing.lookup(socket._handle.fd, table(job.defaultTable), true);
    out.clientPort = client.localPort;
    out.answer = toa.realRemoteAddress(socket, { trustProxy: 'loopback' });
    clearTimeout(timer);
    console.log(JSON.stringify(out));
    socket.destroy();
    client.destroy();
    server.close();
  });
});
