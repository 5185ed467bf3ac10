// Hardening, end to end: malformed options in real SYNs, crafted broken packets at the tap,
// forged options from untrusted peers on every path, and syncookies. After each, the server
// keeps serving and the next good connection gets the right answer.
import { ADDR, describeE2E } from '../helpers/netns/toa-net';
import { useE2eServer } from '../helpers/netns/e2e-server';
import { TCP, concat, extOptions, ipv4, ipv6, tcp, toaV4 } from '../helpers/vectors/packets';

const hex = (bytes: Uint8Array | number[]) => Buffer.from(bytes).toString('hex');
// 192.0.2.99:4242 as a kind-200 option: an address no client of the harness has.
const FIXED_TOA = hex(toaV4(200, 4242, '192.0.2.99'));

// Each tap: the sock_ops program (the default where it loads) and packet sockets.
for (const source of ['sockops', 'packet'] as const) {
  describeE2E(`hardening, end to end (${source} tap)`, () => {
    const e2e = useE2eServer({ enable: { ack: { source } } });
    const { ask } = e2e;

    it(`reads through the ${source} tap (no silent fallback)`, () => {
      expect(e2e.toa.stats().taps.find((t) => t.port === e2e.port)?.source).toBe(source);
    });

    /** A good connection right after: the server is alive and answers right. */
    async function stillRight() {
      const { answer, localPort } = await ask(ADDR.clients4[0]);
      expect(answer).toMatchObject({ address: ADDR.clients4[0], port: localPort, source: 'toa' });
    }

    describe('malformed options in a real SYN from a trusted proxy', () => {
      it.each([
        ['a zero-length option', 'c800'],
        ['a one-byte option', 'c801'],
        ['a length past the header', 'c8ff9c40c0000201'],
        ['a truncated TOA (len 6)', 'c8069c40c000'],
        ['an over-long TOA (len 10)', 'c80a9c40c00002010000'],
        ['a TOA after EOL', `00${FIXED_TOA}`],
        ['a kind byte with no length at the end', 'c8'],
        ['kind 254 with the TCP Fast Open magic', 'fe08f98901020304'],
        ['garbage filling the option space', 'c903aafe05112233fd040001c8090102030405'],
        ['an all-zero client address', 'c8089c4000000000'],
      ])('%s: no TOA, the peer', async (_name, raw) => {
        await e2e.netns.rule(ADDR.clients4[1], { where: 'syn', raw });
        const { answer } = await ask(ADDR.clients4[1]);
        expect(answer).toMatchObject({ address: ADDR.lip4, source: 'peer' });
        const forwarded = await e2e.netns.packets({ dir: 'c2s', limit: 50 });
        // The bytes really were in the SYN the server got.
        expect(forwarded.some((p) => p.flags === 'S' && (p.optionsHex ?? '').includes(raw))).toBe(true);
        await stillRight();
      });

      it('a valid TOA after an unknown but well-formed option is read', async () => {
        await e2e.netns.rule(ADDR.clients4[2], { where: 'syn', raw: `c904aabb${FIXED_TOA}` });
        const { answer } = await ask(ADDR.clients4[2]);
        expect(answer).toMatchObject({ address: '192.0.2.99', port: 4242, source: 'toa', kind: 200 });
      });

      it('several TOA options in one SYN (after a malformed one): none is believed', async () => {
        // The len-6 option is no TOA shape; the two after it are, so the SYN is ambiguous. Every
        // path and `multiple` are in first-option.test.ts.
        const second = hex(toaV4(200, 5353, '192.0.2.98'));
        await e2e.netns.rule(ADDR.clients4[3], { where: 'syn', raw: `c8069c40c000${FIXED_TOA}${second}` });
        const { answer } = await ask(ADDR.clients4[3]);
        expect(answer).toMatchObject({ address: ADDR.lip4, source: 'peer' });
        await stillRight();
      });
    });

    describe('forged options from an untrusted peer', () => {
      it.each(['syn', 'ack', 'data', 'syn+ack'])('in the %s: ignored', async (where) => {
        await e2e.netns.rule(ADDR.clients4[4], { where, lip: ADDR.untrusted4 });
        const { answer } = await ask(ADDR.clients4[4]);
        expect(answer).toMatchObject({ address: ADDR.untrusted4, source: 'peer' });
        expect(answer.proxy).toBeUndefined();
      });

      it('over IPv6 too', async () => {
        await e2e.netns.rule(ADDR.clients6[4], { where: 'syn+ack', lip: ADDR.untrusted6 });
        const { answer } = await ask(ADDR.clients6[4], ADDR.vip6);
        expect(answer).toMatchObject({ address: ADDR.untrusted6, source: 'peer' });
      });
    });

    // A TOA in both SYN and ACK that disagree (the SYN's wins) is proven in toa-ack.test.ts.

    it('crafted broken packets at the tap: no crash, and the next connection is right', async () => {
      const before = e2e.toa.stats();
      const bodyV4 = (options: number[], spec: object = {}) =>
        tcp({ sport: 33333, dport: e2e.port, flags: TCP.ACK, options, ...spec });
      const packets = [
        ipv4({ src: ADDR.lip4, dst: ADDR.rip4, ihl: 4, payload: bodyV4(toaV4(200, 1, '192.0.2.97')) }), // IHL < 5
        ipv4({ src: ADDR.lip4, dst: ADDR.rip4, ihl: 15, payload: bodyV4([]) }), // IHL past the buffer
        ipv4({ src: ADDR.lip4, dst: ADDR.rip4, payload: bodyV4(toaV4(200, 1, '192.0.2.97'), { doff: 15 }) }), // doff too big
        ipv4({ src: ADDR.lip4, dst: ADDR.rip4, payload: bodyV4([0xc8, 0x08, 0x9c], { doff: 6 }) }), // truncated
        ipv4({ src: ADDR.lip4, dst: ADDR.rip4, payload: bodyV4(new Array(40).fill(0xc8)) }), // garbage
        ipv6({
          src: ADDR.lip6, dst: ADDR.rip6,
          extHeaders: Array.from({ length: 20 }, () => extOptions(60)), // a long extension-header chain
          payload: tcp({ sport: 33334, dport: e2e.port, flags: TCP.ACK, options: toaV4(200, 1, '192.0.2.97') }),
        }),
        ipv6({ src: ADDR.lip6, dst: ADDR.rip6, extHeaders: [extOptions(0, 200)], payload: [] }), // runs past the buffer
        concat([0x45], new Array(10).fill(0)), // a stub
      ];
      for (const p of packets) await e2e.netns.raw(hex(p), { fix: false });
      await stillRight();
      const after = e2e.toa.stats();
      // Packet sockets copied them to user space, whose parser took them apart; the sock_ops
      // program sees only packets of connections the kernel accepted, so none of these.
      if (source === 'packet') expect(after.packets).toBeGreaterThan(before.packets);
      else expect(after.packets).toBe(before.packets);
    });

    it('with syncookies forced, the saved SYN is empty: the tap’s copy of the SYN answers, and the ACK tap', async () => {
      await e2e.netns.sysctl('net.ipv4.tcp_syncookies', 2);
      try {
        // TOA in the SYN only: nothing saved, the tap held the SYN (it carried an uncommon option).
        await e2e.netns.rule(ADDR.clients4[6], { where: 'syn' });
        const synOnly = await ask(ADDR.clients4[6]);
        expect(synOnly.answer).toMatchObject({ address: ADDR.clients4[6], port: synOnly.localPort, source: 'toa', packet: 'syn' });
        // The ACK tap still reads a TOA from the handshake ACK.
        await e2e.netns.rule(ADDR.clients4[7], { where: 'syn+ack' });
        const withAck = await ask(ADDR.clients4[7]);
        expect(withAck.answer).toMatchObject({ address: ADDR.clients4[7], port: withAck.localPort, source: 'toa' });
      } finally {
        await e2e.netns.sysctl('net.ipv4.tcp_syncookies', 1);
      }
      await stillRight();
    });
  });
}
