#!/usr/bin/env node
// Writes the tap table fuzzer's starting corpus (fuzz/tap_table_fuzz.cc, whose header describes the
// framing): one file per scenario of test/netns/ack-table.test.ts's table tests, built from the same
// packet helpers, so the fuzzer starts from handshakes that really make entries and hits.
// Usage: node scripts/fuzz-table-seeds.js [outDir]
'use strict';
const path = require('node:path');
require('./require-ts');
const { seedDir } = require('./seed-dir');

const root = path.join(__dirname, '..');
const P = require(path.join(root, 'test/helpers/vectors/packets.ts'));

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
// A Linux SYN has only common options: the table reads it and keeps nothing. A SYN with an
// uncommon option (MPTCP's kind 30 unless given) is held.
const plainSyn = (t, seq = ISN) => packet(t, { flags: P.TCP.SYN, options: P.linuxSyn(), seq });
const syn = (t, seq = ISN, payload = [], options = [30, 4, 0, 0]) => packet(t, { flags: P.TCP.SYN, options: [...P.mss(), ...options], seq, payload });
const tsOnly = [...P.nop(), ...P.nop(), ...P.ts()];

// Operations: the op byte's low 3 bits are the action, the high 5 the milliseconds before it.
// A sequence byte: low 2 bits 0 the held SYN's next number (else the first kept one's), 1-3 the
// kept packet's; +4 adds 1; OFFERED + n: the number of the packet offered on the tuple n + 1 back.
const NEXT = 0, KEPT1 = 1, KEPT2 = 2, KEPT3 = 3, PLUS_ONE = 4, OFFERED = 8;
const offer = (p, ms = 0) => [(ms << 3) | 0, p.length, ...p];
const offerInSequence = (p, seqByte = NEXT, ms = 0) => [(ms << 3) | 1, seqByte, p.length, ...p];
const take = (back = 0, table = DEFAULT, ms = 0) => [(ms << 3) | 2, (table << 6) | back];
const takeMapped = (back = 0, table = DEFAULT, ms = 0) => [(ms << 3) | 3, (table << 6) | back];
const takeSeq = (back = 0, seqByte = NEXT, table = DEFAULT, ms = 0) => [(ms << 3) | 4, (table << 6) | back, seqByte];
const takeSeqMapped = (back = 0, seqByte = NEXT, table = DEFAULT, ms = 0) => [(ms << 3) | 5, (table << 6) | back, seqByte];
const loss = (ms = 0) => [(ms << 3) | 6];
const wait = (units) => [(units << 3) | 7];

const toa = (port, ip = '192.0.2.1') => P.toaV4(254, port, ip);

const seeds = {
  'v4-handshake-toa-in-ack': [100, 255, DEFAULT, ...offer(plainSyn(V4)), ...offer(packet(V4, { options: P.toaV4(254, 4321, '203.0.113.7') })), ...takeSeq()],
  'v6-handshake-toa-in-ack': [100, 255, DEFAULT | RANDOM_SEED, ...offer(plainSyn(V6)), ...offer(packet(V6, { options: P.toaV6(254, 4321, '2001:db8::7') })), ...takeSeq()],
  'v4-looked-up-as-mapped': [100, 255, DEFAULT, ...offer(packet(V4, { options: P.toaV4(200, 1, '192.0.2.1') })), ...takeSeqMapped(), ...offer(packet(V4, { options: toa(2) })), ...takeMapped()],
  'toa-in-first-data-packet': [
    100, 255, DEFAULT, ...offer(plainSyn(V4)), ...offer(packet(V4, { options: tsOnly })),
    ...offer(packet(V4, { options: [...tsOnly, ...P.toaV4(200, 2000, '192.0.2.2')], payload: [1, 2, 3, 4, 5] })), ...takeSeq(),
  ],
  'held-syn-bad-sequence-then-in-sequence': [
    100, 255, DEFAULT, ...offer(syn(V4)), ...offer(packet(V4, { options: toa(1), seq: 7 })),
    ...offerInSequence(packet(V4, { options: toa(2), seq: 7 })), ...takeSeq(),
  ],
  'held-syn-of-another-connection-is-stale': [
    100, 255, DEFAULT, ...offer(packet(V4, { options: toa(1) })), ...offer(syn(V4, 5000)),
    ...offer(packet(V4, { options: toa(2), seq: 5001 })), ...takeSeq(0, PLUS_ONE),
  ],
  'no-saved-syn-held-syn-stands-in': [
    100, 255, DEFAULT, ...offer(syn(V4, ISN, [], toa(1, '192.0.2.5'))), ...offer(packet(V4, { options: toa(2, '192.0.2.6') })), ...take(),
    ...offer(syn(V6, ISN, [], P.tfoCookie([1, 2, 3, 4]))), ...offer(packet(V6, { options: P.toaV6(253, 3, '2001:db8::3') })), ...take(),
  ],
  'no-saved-syn-kept-packets-agree-or-are-stale': [
    100, 255, DEFAULT,
    ...offer(packet(V4, { options: [...P.nop(), ...P.nop(), ...P.ts(1), ...toa(1)] })),
    ...offer(packet(V4, { options: [...P.nop(), ...P.nop(), ...P.ts(2), ...toa(1)], seq: ISN + 100, payload: [1] })), ...take(),
    ...offer(packet(V6, { options: P.toaV6(254, 1, '2001:db8::1') })),
    ...offer(packet(V6, { options: P.toaV6(254, 2, '2001:db8::2'), seq: ISN + 100 })), ...take(),
  ],
  'loss-makes-unchecked-entries-stale': [
    100, 255, DEFAULT, ...offer(packet(V4, { options: toa(1) })), ...offer(syn(V6)), ...offer(packet(V6, { options: P.toaV6(254, 2, '2001:db8::2') })),
    ...offer(packet({ ...V4, sport: 40100 }, { options: toa(3) })),
    ...loss(), ...take(3), ...take(1), ...takeSeq(0),
    ...offer(packet(V4, { options: toa(4) })), ...take(),
  ],
  'four-numbers-the-fourth-takes-the-third-place': [
    100, 255, DEFAULT, ...[0, 10, 20, 30].flatMap((n) => offer(packet(V4, { options: toa(n), seq: ISN + 1 + n }))),
    ...takeSeq(0, KEPT3),
    ...[0, 10, 20, 30].flatMap((n) => offer(packet(V6, { options: P.toaV6(254, n, '2001:db8::1'), seq: ISN + 1 + n }))),
    ...takeSeq(0, OFFERED + 1), // the third, replaced by the fourth
    ...[0, 10, 20, 30].flatMap((n) => offer(packet({ ...V6, sport: 40002 }, { options: P.toaV6(254, n, '2001:db8::1'), seq: ISN + 1 + n }))),
    ...takeSeq(0, OFFERED + 3), // the first, still there
  ],
  'capacity-2-evicts-the-oldest': [
    2, 255, DEFAULT,
    ...[1, 2, 3].flatMap((i) => {
      const t = { ...V4, sport: 41000 + i };
      return [...offer(plainSyn(t)), ...offer(packet(t, { options: P.toaV4(200, i, '192.0.2.7') }))];
    }),
    ...takeSeq(0), ...takeSeq(2), ...takeSeq(4),
  ],
  'max-age-expires': [50, 40, DEFAULT, ...offer(syn(V4)), ...offer(packet(V4, { options: toa(1) }), 30), ...takeSeq(0, NEXT, DEFAULT, 20), ...offer(packet(V6, { options: P.toaV6(254, 2, '2001:db8::2') })), ...wait(2), ...take()],
  'kind-configured-after-the-packet': [
    100, 255, NONE, ...offer(plainSyn(V4)), ...offer(packet(V4, { options: P.aliCdn('192.0.2.9') })),
    // Untagged under the kinds of its time too: the first with this number stays.
    ...offer(packet(V4, { options: P.aliCdn('192.0.2.10'), payload: [1] })), ...takeSeq(0, NEXT, WITH_28),
  ],
  'first-toa-per-number-decides-uncommon-replaced': [
    100, 255, DEFAULT, ...offer(plainSyn(V6)), ...offer(packet(V6, { options: [30, 4, 0, 0] })),
    ...offer(packet(V6, { options: P.toaV6(253, 1, '2001:db8::9') })),
    ...offer(packet(V6, { options: P.toaV6(253, 2, '2001:db8::a'), payload: [1] })), ...takeSeq(),
  ],
  'syn-with-data-tcp-fast-open': [
    100, 255, DEFAULT, ...offer(syn(V4, ISN, [1, 2, 3])), ...offer(packet(V4, { options: toa(9), seq: ISN + 1 })),
    ...offerInSequence(packet(V4, { options: toa(10) })), ...take(),
  ],
  'ignored-rst-synack-common-options-not-tcp': [
    100, 255, DEFAULT, ...offer(plainSyn(V4)),
    ...offer(packet(V4, { flags: P.TCP.RST, options: toa(1) })),
    ...offer(packet(V4, { flags: P.TCP.SYN | P.TCP.ACK, options: toa(2) })),
    ...offer(packet(V4, { options: tsOnly })),
    ...offer(packet(V4, { options: [...P.nop(), ...P.nop(), 5, 10, 0, 0, 0, 1, 0, 0, 0, 2] })),
    ...offer(packet(V4, { options: [...P.nop(), ...P.nop(), ...P.nop(), 253] })),
    ...offer(packet({ ...V4, sport: 40200 }, { options: [0, 0, 0, 0, ...toa(4)] })),
    ...offer(packet({ ...V4, sport: 40201 }, { options: [8, 1, 1, 1, ...toa(5)] })),
    ...offer(P.ipv4({ protocol: 17, payload: new Array(20).fill(0) })),
    ...offer(P.ipv6({ extHeaders: [P.extOptions(0)], payload: P.tcp({ flags: P.TCP.ACK, options: toa(3) }) })),
    ...offer(syn(V4).slice(0, 30)), ...take(),
  ],
  'ack-without-syn-is-kept-unmatched': [100, 255, DEFAULT, ...offer(packet(V4, { options: toa(1) })), ...take()],
};

for (const [name, bytes] of Object.entries(seeds)) {
  write(name, bytes);
}
console.log(`fuzz-table-seeds: wrote ${Object.keys(seeds).length} seeds to ${path.relative(process.cwd(), outDir) || '.'}`);
