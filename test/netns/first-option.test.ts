// Which option decides, end to end: real packets through the full-NAT proxy of the harness, with
// TOA-shaped options placed in the SYN, the handshake ACK or the first data packet, over IPv4 and
// IPv6, for every default kind and both lengths. The first option of a configured kind with a TOA
// length decides; one that names no client means no TOA (never a later one); two or more are
// ambiguous unless `multiple` says which. The TFO magic F9 89 is a cookie in a SYN only.
import { ADDR, describeE2E } from '../helpers/netns/toa-net';
import { TRUST_LIPS, useE2eServer } from '../helpers/netns/e2e-server';
import { toaV4, toaV6 } from '../helpers/vectors/packets';
import type { RealAddress, ToaOptions } from '../../lib/index';

const MODES = ['ignore', 'first', 'last'] as const;
type Mode = (typeof MODES)[number];
type Answers = Record<Mode, RealAddress>;
type Where = 'syn' | 'ack' | 'data';

const hex = (bytes: number[]) => Buffer.from(bytes).toString('hex');

describeE2E('the first TOA-shaped option decides (end to end)', () => {
  let emitWarning: jest.SpyInstance;
  const options: Record<Mode, ToaOptions> = {
    ignore: { trustProxy: TRUST_LIPS },
    first: { trustProxy: TRUST_LIPS, multiple: 'first' },
    last: { trustProxy: TRUST_LIPS, multiple: 'last' },
  };
  // Three resolvers on one connection: the packets are read once and each selects its own way.
  const e2e = useE2eServer({
    answer: (toa, req) => Object.fromEntries(MODES.map((m) => [m, toa.realRemoteAddress(req.socket, options[m])])),
  });

  beforeAll(() => {
    // Warnings are per process and once per proxy: watch them from the first connection on.
    emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterAll(() => emitWarning?.mockRestore());

  let next = 0;
  /** One connection whose `where` packet carries `raw` after its own options; the three answers. */
  async function through(where: Where, raw: string, six = false): Promise<Answers> {
    const clients = six ? ADDR.clients6 : ADDR.clients4;
    const client = clients[next++ % clients.length];
    await e2e.netns.rule(client, { where, raw });
    await e2e.netns.clearPackets();
    const { answer } = await e2e.ask<Answers>(client, six ? ADDR.vip6 : ADDR.vip4);
    // The bytes really were in that packet, as the server's kernel got it.
    const forwarded = await e2e.netns.packets({ dir: 'c2s', limit: 200 });
    const carrying = forwarded.filter((p) => (p.optionsHex ?? '').includes(raw));
    expect(carrying.length).toBeGreaterThan(0);
    const kinds = carrying.map((p) => (p.flags === 'S' ? 'syn' : String(p.flags).includes('S') ? 'other' : p.payloadLen === 0 ? 'ack' : 'data'));
    expect(kinds).toEqual([where]);
    return answer;
  }

  const peer = (six: boolean) => ({ source: 'peer', address: six ? ADDR.lip6 : ADDR.lip4 });
  const toaOf = (address: string, port: number) => ({ source: 'toa', address, port });

  describe("the issue's rows", () => {
    it('handshake ACK: the proxy first (port F9 89 = 63881), a forged one after it', async () => {
      const a = await through('ack', 'fe08f989c00002320101fe080050cb0071420101');
      expect(a.ignore).toMatchObject(peer(false));
      expect(a.first).toMatchObject(toaOf('192.0.2.50', 63881));
      expect(a.last).toMatchObject(toaOf('203.0.113.66', 80));
    });

    it('SYN: a TFO cookie first, a TOA after it', async () => {
      const a = await through('syn', 'fe08f989c0c1c2c3fe0815b3c0000201');
      expect(a.ignore).toMatchObject(peer(false));
      expect(a.first).toMatchObject(peer(false));
      expect(a.last).toMatchObject(toaOf('192.0.2.1', 5555));
    });

    it('SYN: 0.0.0.0 first, a TOA after it', async () => {
      const a = await through('syn', 'fe0815b300000000fe0815b4c0000202');
      expect(a.ignore).toMatchObject(peer(false));
      expect(a.first).toMatchObject(peer(false));
      expect(a.last).toMatchObject(toaOf('192.0.2.2', 5556));
    });

    it('handshake ACK: F9 89 alone is a port', async () => {
      const a = await through('ack', 'fe08f989c0000201');
      for (const m of MODES) expect(a[m]).toMatchObject(toaOf('192.0.2.1', 63881));
    });
  });

  // Every path, family, kind and length: [A, B] with both naming a client, and [none, B].
  const SHAPES: Array<{ kind: number; len: 8 | 20 }> = [
    { kind: 200, len: 8 }, { kind: 253, len: 8 }, { kind: 254, len: 8 }, { kind: 253, len: 20 }, { kind: 254, len: 20 },
  ];
  const option = (kind: number, len: 8 | 20, port: number, v4: string, v6: string) =>
    len === 8 ? toaV4(kind, port, v4) : toaV6(kind, port, v6);
  const A = { port: 1111, v4: '192.0.2.11', v6: '2001:db8:c::11' };
  const B = { port: 2222, v4: '192.0.2.22', v6: '2001:db8:c::22' };
  const cases = (['syn', 'ack', 'data'] as Where[]).flatMap((where) =>
    [false, true].flatMap((six) => SHAPES.map((s) => ({ where, six, ...s }))),
  );

  describe.each(cases)('$where, IPv$six (false: 4, true: 6), kind $kind len $len', ({ where, six, kind, len }) => {
    // Two 20-byte options fill the 40 option bytes, and a Linux SYN always has its MSS: in a SYN
    // the second option is the kind's 8-byte layout (253 and 254 have both).
    const lenB = where === 'syn' && len === 20 ? 8 : len;
    const a = option(kind, len, A.port, A.v4, A.v6);
    const b = option(kind, lenB, B.port, B.v4, B.v6);
    const addr = (x: typeof A) => (len === 8 ? x.v4 : x.v6);
    const addrB = lenB === 8 ? B.v4 : B.v6;

    it('two options naming clients: ambiguous by default, first or last on request', async () => {
      const answers = await through(where, hex([...a, ...b]), six);
      expect(answers.ignore).toMatchObject(peer(six));
      expect(answers.first).toMatchObject(toaOf(addr(A), A.port));
      expect(answers.last).toMatchObject(toaOf(addrB, B.port));
    });

    it('a first option naming 0.0.0.0 / :: means no TOA; only `last` reads the one after', async () => {
      const zero = option(kind, len, A.port, '0.0.0.0', '::');
      const answers = await through(where, hex([...zero, ...b]), six);
      expect(answers.ignore).toMatchObject(peer(six));
      expect(answers.first).toMatchObject(peer(six));
      expect(answers.last).toMatchObject(toaOf(addrB, B.port));
    });

    if (kind !== 200) {
      it(`F9 89 under kind ${kind}: ${where === 'syn' ? 'a TFO cookie, so no TOA' : 'a port'}`, async () => {
        const tfo = option(kind, len, 0xf989, A.v4, A.v6);
        const answers = await through(where, hex(tfo), six);
        for (const m of MODES) {
          expect(answers[m]).toMatchObject(where === 'syn' ? peer(six) : toaOf(addr(A), 0xf989));
        }
      });
    }
  });

  it('counts the ambiguous connections in stats().refused and warns once per proxy', async () => {
    const before = e2e.toa.stats().refused.ambiguous;
    const raw = hex([...toaV4(254, 1, '192.0.2.31'), ...toaV4(254, 2, '192.0.2.32')]);
    for (let i = 0; i < 3; i++) await through('syn', raw);
    // Each connection is resolved by three resolvers; the 'ignore' one refuses it.
    expect(e2e.toa.stats().refused.ambiguous - before).toBe(3);
    const ambiguous = emitWarning.mock.calls.filter((c) => (c[1] as { code?: string })?.code === 'NODE_TOA_AMBIGUOUS');
    const aboutLip4 = ambiguous.map((c) => String(c[0])).filter((m) => m.includes(` from ${ADDR.lip4}:`));
    expect(aboutLip4).toHaveLength(1);
    expect(aboutLip4[0]).toContain("multiple: 'first'");
  });
});
