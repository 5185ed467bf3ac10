#!/usr/bin/env node
// Writes the sock_ops record fuzzer's starting corpus (fuzz/sockops_parse_fuzz.cc): records as the
// program fills them (native/sockops_conn.h), built from the tests' packet helpers: TOA in the
// saved SYN, the handshake ACK, the first data packet, a syncookie SYN the program kept (its ACK
// following it, and not), IPv6, an IPv4 client of a dual-stack listener.
// Usage: node scripts/fuzz-sockops-seeds.js [outDir]
'use strict';
const path = require('node:path');
require('./require-ts');
const { seedDir } = require('./seed-dir');

const root = path.join(__dirname, '..');
const P = require(path.join(root, 'test/helpers/vectors/packets.ts'));

const { write } = seedDir(path.join(root, 'fuzz/sockops_seeds'));

// native/sockops_conn.h
const SYN_MAX = 120;
const TCP_MAX = 60;
const SIZE = 8 + 8 + 32 + SYN_MAX + 2 * TCP_MAX;
const ISN = 5000;

const ipBytes = (text) => require('ipaddr.js').parse(text).toByteArray();

function record({ family = 4, remote, local, rport, lport, syn = [], cookie = false, ack = [], data = [] }) {
  const out = Buffer.alloc(SIZE);
  out[0] = syn.length;
  out[1] = ack.length;
  out[2] = data.length;
  out[3] = family;
  out[4] = cookie ? 1 : 0;
  out.writeUInt32LE(rport, 8);
  out.writeUInt32LE(lport, 12);
  Buffer.from(ipBytes(remote)).copy(out, 16);
  Buffer.from(ipBytes(local)).copy(out, 32);
  Buffer.from(syn).copy(out, 48);
  Buffer.from(ack).copy(out, 48 + SYN_MAX);
  Buffer.from(data).copy(out, 48 + SYN_MAX + TCP_MAX);
  return out;
}

const V4 = { remote: '198.51.100.2', local: '203.0.113.10', rport: 40000, lport: 80 };
const V6 = { family: 6, remote: '2001:db8:b::2', local: '2001:db8:d::10', rport: 40001, lport: 443 };
const tcp = (t, flags, options, seq) => P.tcp({ sport: t.rport, dport: t.lport, flags, options, seq, ack: 1 });
const synPacket = (t, options) => {
  const segment = tcp(t, P.TCP.SYN, [...P.mss(), ...options], ISN);
  return t.family === 6 ? P.ipv6({ src: t.remote, dst: t.local, payload: segment }) : P.ipv4({ src: t.remote, dst: t.local, payload: segment });
};
const ackHeader = (t, options, seq = ISN + 1) => tcp(t, P.TCP.ACK, options, seq);
const toa = P.toaV4(254, 1234, '192.0.2.7');

write('syn-toa', record({ ...V4, syn: synPacket(V4, toa), ack: ackHeader(V4, []) }));
write('ack-toa', record({ ...V4, syn: synPacket(V4, []), ack: ackHeader(V4, toa) }));
write('data-toa', record({ ...V4, syn: synPacket(V4, []), ack: ackHeader(V4, []), data: ackHeader(V4, toa) }));
write('data-later', record({ ...V4, syn: synPacket(V4, []), ack: ackHeader(V4, []), data: ackHeader(V4, toa, ISN + 100) }));
write('cookie-syn', record({ ...V4, cookie: true, syn: synPacket(V4, toa), ack: ackHeader(V4, []) }));
write('cookie-syn-stale', record({ ...V4, cookie: true, syn: synPacket(V4, toa), ack: ackHeader(V4, [], ISN + 99) }));
write('no-syn', record({ ...V4, ack: ackHeader(V4, toa) }));
write('v6-ack', record({ ...V6, syn: synPacket(V6, []), ack: ackHeader(V6, P.toaV6(254, 1234, '2001:db8::7')) }));
write('mapped', record({ ...V6, remote: '::ffff:198.51.100.2', local: '::ffff:203.0.113.10', syn: synPacket(V4, []), ack: ackHeader(V4, toa) }));
if (SIZE !== 288) throw new Error('fuzz-sockops-seeds: native/sockops_conn.h changed; update record()');
