// metrics(), RealAddress.packet and the diagnostics channels, end to end: a known mix of real
// connections through the harness's full-NAT proxy (trusted and untrusted senders; TOA in the SYN,
// the handshake ACK and the first data packet; malformed, ambiguous, a TFO cookie; syncookies),
// and every counter asserted exactly.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { ADDR, describeE2E, type ToaNet } from '../helpers/netns/toa-net';
import { useE2eServer } from '../helpers/netns/e2e-server';
import { toaV4 } from '../helpers/vectors/packets';
import type { RealAddress, ResolveMessage, WarningMessage } from '../../lib/index';

const hex = (bytes: number[]) => Buffer.from(bytes).toString('hex');

describeE2E('metrics(), packet and the diagnostics channels (end to end)', () => {
  // A module registry of this file's own: the counters start at zero.
  const e2e = useE2eServer();

  let next = 0;
  async function connect(rule: Parameters<ToaNet['rule']>[1]): Promise<{ answer: RealAddress; localPort: number }> {
    const client = ADDR.clients4[next++ % ADDR.clients4.length];
    await e2e.netns.rule(client, rule);
    return e2e.ask(client);
  }

  it('counts a known mix of connections exactly, in total and for the port', async () => {
    const messages: ResolveMessage[] = [];
    const warnings: WarningMessage[] = [];
    const onResolve = (m: unknown) => messages.push(m as ResolveMessage);
    const onWarning = (m: unknown) => warnings.push(m as WarningMessage);
    subscribe('node-toa:resolve', onResolve);
    subscribe('node-toa:warning', onWarning);
    const before = e2e.toa.metrics();
    expect(before.connections).toBe(0);
    try {
      for (let i = 0; i < 3; i++) {
        const { answer, localPort } = await connect({ where: 'syn' }); // kind 200
        expect(answer).toMatchObject({ source: 'toa', packet: 'syn', kind: 200, port: localPort });
      }
      for (let i = 0; i < 2; i++) {
        const { answer } = await connect({ where: 'ack', kind: 254, format: 'v4' });
        expect(answer).toMatchObject({ source: 'toa', packet: 'ack', kind: 254 });
      }
      for (let i = 0; i < 2; i++) {
        const { answer } = await connect({ where: 'data' });
        expect(answer).toMatchObject({ source: 'toa', packet: 'data', kind: 200 });
      }
      for (let i = 0; i < 2; i++) {
        expect((await connect({ where: 'syn', lip: ADDR.untrusted4 })).answer).toMatchObject({ source: 'peer' });
      }
      expect((await connect({ where: 'syn', raw: hex(toaV4(200, 1, '0.0.0.0')) })).answer.source).toBe('peer');
      const two = hex([...toaV4(254, 1, '192.0.2.31'), ...toaV4(254, 2, '192.0.2.32')]);
      for (let i = 0; i < 2; i++) expect((await connect({ where: 'syn', raw: two })).answer.source).toBe('peer');
      expect((await connect({ where: 'syn', raw: 'fe08f989c0c1c2c3' })).answer.source).toBe('peer'); // a TFO cookie
      expect((await connect({ where: 'none' })).answer).toMatchObject({ source: 'peer', address: ADDR.lip4 });
      await e2e.netns.sysctl('net.ipv4.tcp_syncookies', 2);
      try {
        // No saved SYN: the tap's copy of the SYN answers (and the connection counts as noSavedSyn).
        for (let i = 0; i < 2; i++) expect((await connect({ where: 'syn' })).answer).toMatchObject({ source: 'toa', packet: 'syn' });
      } finally {
        await e2e.netns.sysctl('net.ipv4.tcp_syncookies', 1);
      }
    } finally {
      unsubscribe('node-toa:resolve', onResolve);
      unsubscribe('node-toa:warning', onWarning);
    }

    const expected = {
      connections: 16,
      bySource: { toa: 9, kernel: 0, 'proxy-protocol': 0, peer: 7 },
      byPacket: { syn: 5, ack: 2, data: 2 },
      byKind: { 200: 7, 254: 2 },
      refused: { untrusted: 2, ambiguous: 2, malformed: 1, tfoCookie: 1 },
      noSavedSyn: 2,
      proxyProtocol: { headers: 0, local: 0, malformed: 0, tooLarge: 0, timeout: 0, missing: 0 },
      udp: {
        flows: { spp: 0, 'proxy-protocol': 0, uoa: 0 },
        datagrams: { spp: 0, 'proxy-protocol': 0, uoa: 0, peer: 0 },
        dropped: { malformed: 0, tooLarge: 0, missing: 0 },
        refused: { untrusted: 0 },
        consumed: 0,
      },
    };
    const m = e2e.toa.metrics();
    const { ports, tap, ...sum } = m;
    expect(sum).toEqual(expected);
    expect(ports).toEqual({ [e2e.port]: expected });
    // The tap (the sock_ops program here) is asked in the same call as the saved SYN, unless the
    // SYN held exactly one option naming a client (3 trusted, 2 untrusted): 11 lookups. It found
    // options for the 2 ACK and 2 data ones, and for the 2 syncookie ones (the SYN it kept); the 5
    // others missed (malformed, 2 ambiguous, a TFO cookie, none).
    expect(e2e.toa.stats().taps.find((t) => t.port === e2e.port)?.source).toBe('sockops');
    expect(tap).toEqual({ drops: 0, evictions: 0, misses: 5 });
    expect(e2e.toa.stats().refused).toEqual(expected.refused);

    // One message per connection, with the answer, the port and why options were refused.
    expect(messages).toHaveLength(16);
    expect(messages.every((x) => x.port === e2e.port && typeof x.socket === 'object')).toBe(true);
    const reasons = messages.flatMap((x) => x.refused.map((r) => `${r.reason}/${r.packet}/${r.kind}/${r.count}`)).sort();
    expect(reasons).toEqual([
      'ambiguous/syn/254/2', 'ambiguous/syn/254/2', 'malformed/syn/200/1', 'tfoCookie/syn/254/0',
      'untrusted/syn/200/1', 'untrusted/syn/200/1',
    ]);
    expect(messages.filter((x) => x.answer.source === 'toa').map((x) => x.answer.packet).sort()).toEqual(
      ['ack', 'ack', 'data', 'data', 'syn', 'syn', 'syn', 'syn', 'syn'],
    );
    // The untrusted proxy and the ambiguous packets were warned about on the channel too.
    expect(warnings.map((w) => w.code).sort()).toEqual(['NODE_TOA_AMBIGUOUS', 'NODE_TOA_UNTRUSTED_PEER']);
  });

  it('publishes nothing when no one subscribes, and again once someone does', async () => {
    const messages: unknown[] = [];
    const onResolve = (m: unknown) => messages.push(m);
    await connect({ where: 'syn' });
    subscribe('node-toa:resolve', onResolve);
    try {
      await connect({ where: 'syn' });
    } finally {
      unsubscribe('node-toa:resolve', onResolve);
    }
    await connect({ where: 'syn' });
    expect(messages).toHaveLength(1);
  });
});
