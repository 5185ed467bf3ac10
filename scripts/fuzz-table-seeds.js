#!/usr/bin/env node
// Writes the tap table fuzzer's starting corpus (fuzz/tap_table_fuzz.cc, whose header describes the
// framing): one file per scenario of test/ack-table.test.ts's table tests, built from the same
// packet helpers, so the fuzzer starts from handshakes that really make entries and hits.
// Usage: node scripts/fuzz-table-seeds.js [outDir]
'use strict';
const path = require('node:path');
require('./require-ts');
const { seedDir } = require('./seed-dir');

const root = path.join(__dirname, '..');
const P = require(path.join(root, 'test/helpers/packets.ts'));

const { outDir, write } = seedDir(path.join(root, 'fuzz/tap_table_seeds'));

// Kind tables (byte 2, and the high bits of a take's byte), as KindTables in the fuzz target; in
// byte 2, RANDOM_SEED seeds the table's hash as the tap does.
const DEFAULT = 0, WITH_28 = 1, NONE = 3, RANDOM_SEED = 0xfc;
const ISN = 1000;
const V4 = { src: '198.51.100.2', sport: 40000, dst: '203.0.113.10', dport: 80 };
const V6 = { src: '2001:db8:b::2', sport: 40001, dst: '2001:db8:d::10', dport: 443 };

function packet(t, { flags = P.TCP.ACK, options = [], seq = ISN + 1, payload = [] } = {}) {
  const segment = P.tcp({ sport: t.sport, dport: t.dport, flags, options, seq, ack: 1, payload });
  return t.src.includes(':') ? P.ipv6({ src: t.src, dst: t.dst, payload: segment }) : P.ipv4({ src: t.src, dst: t.dst, payload: segment });
}
const syn = (t, seq = ISN, payload = []) => packet(t, { flags: P.TCP.SYN, options: P.linuxSyn(), seq, payload });
const tsOnly = [...P.nop(), ...P.nop(), ...P.ts()];

// Operations: the op byte's low 2 bits are the action, the high 6 the milliseconds before it.
const offer = (p, ms = 0) => [(ms << 2) | 0, p.length, ...p];
const offerInSequence = (p, ms = 0) => [(ms << 2) | 1, p.length, ...p];
const take = (back = 0, table = DEFAULT, ms = 0) => [(ms << 2) | 2, (table << 6) | back];
const takeMapped = (back = 0, table = DEFAULT, ms = 0) => [(ms << 2) | 3, (table << 6) | back];

const seeds = {
  'v4-handshake-toa-in-ack': [100, 255, DEFAULT, ...offer(syn(V4)), ...offer(packet(V4, { options: P.toaV4(254, 4321, '203.0.113.7') })), ...take()],
  'v6-handshake-toa-in-ack': [100, 255, DEFAULT | RANDOM_SEED, ...offer(syn(V6)), ...offer(packet(V6, { options: P.toaV6(254, 4321, '2001:db8::7') })), ...take()],
  'v4-looked-up-as-mapped': [100, 255, DEFAULT, ...offer(syn(V4)), ...offer(packet(V4, { options: P.toaV4(200, 1, '192.0.2.1') })), ...takeMapped()],
  'toa-in-first-data-packet': [
    100, 255, DEFAULT, ...offer(syn(V4)), ...offer(packet(V4, { options: tsOnly })),
    ...offer(packet(V4, { options: [...tsOnly, ...P.toaV4(200, 2000, '192.0.2.2')], payload: [1, 2, 3, 4, 5] })), ...take(),
  ],
  'bad-sequence-then-in-sequence': [
    100, 255, DEFAULT, ...offer(syn(V4)), ...offer(packet(V4, { options: P.toaV4(254, 1, '192.0.2.3'), seq: 7 })),
    ...offerInSequence(packet(V4, { options: P.toaV4(254, 2, '192.0.2.4'), seq: 7 })), ...take(),
  ],
  'reused-tuple-forgets-the-old-connection': [
    100, 255, DEFAULT, ...offer(syn(V4)), ...offer(packet(V4, { options: P.toaV4(254, 1, '192.0.2.5') })),
    ...offer(syn(V4, 5000)), ...offer(packet(V4, { options: P.toaV4(254, 2, '192.0.2.6'), seq: 5001 })), ...take(),
  ],
  'capacity-2-evicts-the-oldest': [
    2, 255, DEFAULT,
    ...[1, 2, 3].flatMap((i) => {
      const t = { ...V4, sport: 41000 + i };
      return [...offer(syn(t)), ...offer(packet(t, { options: P.toaV4(200, i, '192.0.2.7') }))];
    }),
    ...take(0), ...take(2), ...take(4),
  ],
  'max-age-expires': [50, 40, DEFAULT, ...offer(syn(V4)), ...offer(packet(V4, { options: P.toaV4(254, 1, '192.0.2.8') }), 30), ...take(0, DEFAULT, 20)],
  'kind-configured-after-the-packet': [
    100, 255, NONE, ...offer(syn(V4)), ...offer(packet(V4, { options: P.aliCdn('192.0.2.9') })), ...take(0, WITH_28),
  ],
  'first-toa-decides-uncommon-replaced': [
    100, 255, DEFAULT, ...offer(syn(V6)), ...offer(packet(V6, { options: [30, 4, 0, 0] })),
    ...offer(packet(V6, { options: P.toaV6(253, 1, '2001:db8::9') })),
    ...offer(packet(V6, { options: P.toaV6(253, 2, '2001:db8::a'), payload: [1] })), ...take(),
  ],
  'syn-with-data-tcp-fast-open': [
    100, 255, DEFAULT, ...offer(syn(V4, ISN, [1, 2, 3])), ...offer(packet(V4, { options: P.toaV4(254, 9, '192.0.2.10'), seq: ISN + 4 })), ...take(),
  ],
  'ignored-rst-synack-timestamps-not-tcp': [
    100, 255, DEFAULT, ...offer(syn(V4)),
    ...offer(packet(V4, { flags: P.TCP.RST, options: P.toaV4(254, 1, '192.0.2.11') })),
    ...offer(packet(V4, { flags: P.TCP.SYN | P.TCP.ACK, options: P.toaV4(254, 2, '192.0.2.12') })),
    ...offer(packet(V4, { options: tsOnly })),
    ...offer(P.ipv4({ protocol: 17, payload: new Array(20).fill(0) })),
    ...offer(P.ipv6({ extHeaders: [P.extOptions(0)], payload: P.tcp({ flags: P.TCP.ACK, options: P.toaV4(254, 3, '192.0.2.13') }) })),
    ...offer(syn(V4).slice(0, 30)), ...take(),
  ],
  'ack-without-syn-is-unmatched': [100, 255, DEFAULT, ...offer(packet(V4, { options: P.toaV4(254, 1, '192.0.2.14') })), ...take()],
};

for (const [name, bytes] of Object.entries(seeds)) {
  write(name, bytes);
}
console.log(`fuzz-table-seeds: wrote ${Object.keys(seeds).length} seeds to ${path.relative(process.cwd(), outDir) || '.'}`);
