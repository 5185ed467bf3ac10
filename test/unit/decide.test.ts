// The policy on modelled native results, including the vendor kernel module case CI can't load.
import { compileDecide, endpoint, type ConnectionFacts } from '../../lib/core/decide';
import { compileOptions } from '../../lib/core/options';
import type { TrustProxy } from '../../lib/core/types';
import type { NativeToa } from '../../lib/addon/native';
import type { Endpoint } from '../../lib/core/types';

const proxy: Endpoint = { family: 'IPv4', address: '198.51.100.2', port: 20001 };
const stranger: Endpoint = { family: 'IPv4', address: '203.0.113.99', port: 20002 };
const client: NativeToa = { family: 'IPv4', address: '192.0.2.1', port: 40000, kind: 200, length: 8, layout: 1, status: 0 };
const ackClient: NativeToa = { family: 'IPv4', address: '192.0.2.2', port: 40001, kind: 254, length: 8, layout: 1, status: 0 };
const fallback = { family: 'IPv6' as const, address: '::ffff:198.51.100.2', port: 20001 };
function run(facts: ConnectionFacts, trustProxy: TrustProxy = '198.51.100.2', multiple?: 'ignore' | 'first' | 'last') {
  const untrusted: string[] = [];
  const refused: string[] = [];
  const options = compileOptions({ trustProxy, kinds: [200, 253, 254], ...(multiple ? { multiple } : {}) }, 'test');
  const answer = compileDecide(options)(facts, facts, () => fallback, {
    untrusted: (peer, toa) => untrusted.push(`${peer.address}/${toa.kind}`),
    refused: (peer, r) => refused.push(`${peer.address}/${r.reason}/${r.count}`),
  });
  return { answer, untrusted, refused };
}

describe('decide', () => {
  it('believes a TOA in the SYN of a trusted peer', () => {
    expect(run({ synPeer: proxy, synOptions: [client] }).answer).toEqual({
      address: '192.0.2.1', port: 40000, family: 'IPv4', source: 'toa', kind: 200, packet: 'syn',
      proxy: { address: '198.51.100.2', port: 20001, family: 'IPv4' },
    });
  });

  it('ignores a TOA from an untrusted peer, answers the peer and reports it', () => {
    const { answer, untrusted } = run({ synPeer: stranger, synOptions: [client] });
    expect(answer).toEqual({ address: '203.0.113.99', port: 20002, family: 'IPv4', source: 'peer' });
    expect(untrusted).toEqual(['203.0.113.99/200']);
  });

  it('prefers the SYN’s TOA to the ACK’s', () => {
    expect(run({ synPeer: proxy, synOptions: [client], ackPeer: proxy, ackOptions: [ackClient] }).answer.address).toBe('192.0.2.1');
  });

  it('uses the ACK’s TOA when the SYN has none, checking the ACK’s own source', () => {
    expect(run({ synPeer: proxy, ackPeer: proxy, ackOptions: [ackClient] }).answer).toMatchObject({
      address: '192.0.2.2', source: 'toa', kind: 254,
    });
    const { answer, untrusted } = run({ synPeer: proxy, ackPeer: stranger, ackOptions: [ackClient] });
    expect(answer).toMatchObject({ address: '198.51.100.2', source: 'peer' });
    expect(untrusted).toEqual(['203.0.113.99/254']);
  });

  it('falls through an untrusted SYN TOA to a trusted ACK TOA', () => {
    expect(run({ synPeer: stranger, synOptions: [client], ackPeer: proxy, ackOptions: [ackClient] }).answer.address).toBe('192.0.2.2');
  });

  describe('with a vendor kernel module that rewrote getpeername', () => {
    const rewritten: Endpoint = { family: 'IPv4', address: '192.0.2.77', port: 45000 };

    it('answers the rewrite as source kernel when the L3 peer is trusted', () => {
      expect(run({ synPeer: proxy, name: rewritten }).answer).toEqual({
        address: '192.0.2.77', port: 45000, family: 'IPv4', source: 'kernel',
        proxy: { address: '198.51.100.2', port: 20001, family: 'IPv4' },
      });
    });

    it('answers the SYN’s own source, not the rewrite, when the L3 peer is not trusted', () => {
      expect(run({ synPeer: stranger, name: rewritten }).answer).toEqual({
        address: '203.0.113.99', port: 20002, family: 'IPv4', source: 'peer',
      });
    });

    it('prefers our own TOA reading to the module’s', () => {
      expect(run({ synPeer: proxy, synOptions: [client], name: rewritten }).answer.source).toBe('toa');
    });

    it('sees no module when getpeername equals the SYN source', () => {
      expect(run({ synPeer: proxy, name: { ...proxy } }).answer.source).toBe('peer');
    });
  });

  it('answers from what Node knows when no packet was seen, IPv4-mapped shown as IPv4', () => {
    expect(run({}).answer).toEqual({ address: '198.51.100.2', port: 20001, family: 'IPv4', source: 'peer' });
  });

  it('reports an IPv6 client behind an IPv4 proxy and the reverse in their own families', () => {
    const v6client: NativeToa = { family: 'IPv6', address: '2001:db8:c::1', port: 1, kind: 253, length: 20, layout: 2, status: 0 };
    const v6proxy: Endpoint = { family: 'IPv6', address: '2001:db8:b::2', port: 2 };
    expect(run({ synPeer: proxy, synOptions: [v6client] }).answer).toMatchObject({ family: 'IPv6', address: '2001:db8:c::1' });
    expect(run({ synPeer: v6proxy, synOptions: [client] }, '2001:db8:b::/64').answer).toMatchObject({
      family: 'IPv4', address: '192.0.2.1', proxy: { family: 'IPv6', address: '2001:db8:b::2' },
    });
  });

  it('normalises only real IPv4-mapped addresses', () => {
    expect(endpoint({ family: 'IPv6', address: '::ffff:7f00:1', port: 1 }).family).toBe('IPv6');
    expect(endpoint({ family: 'IPv6', address: '::ffff:127.0.0.1', port: 1 })).toEqual({
      family: 'IPv4', address: '127.0.0.1', port: 1,
    });
  });

  describe('several TOA-shaped options, and options that name no client', () => {
    const opt = (address: string, port: number, status = 0, kind = 254): NativeToa =>
      ({ family: 'IPv4', address, port, kind, length: 8, layout: 1, status });
    const proxyFirst = opt('192.0.2.50', 63881);
    const forged = opt('203.0.113.66', 80);
    const tfo = opt('192.193.194.195', 63881, 1);
    const zero = opt('0.0.0.0', 5555, 2);

    it('two options: none is believed by default, counted as ambiguous, the ACK still asked', () => {
      const { answer, refused } = run({ synPeer: proxy, synOptions: [proxyFirst, forged] });
      expect(answer).toEqual({ address: '198.51.100.2', port: 20001, family: 'IPv4', source: 'peer' });
      expect(refused).toEqual(['198.51.100.2/ambiguous/2']);
      expect(run({ synPeer: proxy, synOptions: [proxyFirst, forged], ackPeer: proxy, ackOptions: [ackClient] }).answer.address).toBe('192.0.2.2');
    });

    it("multiple: 'first' and 'last' pick by position", () => {
      expect(run({ synPeer: proxy, synOptions: [proxyFirst, forged] }, undefined, 'first').answer).toMatchObject({ address: '192.0.2.50', port: 63881 });
      expect(run({ synPeer: proxy, synOptions: [proxyFirst, forged] }, undefined, 'last').answer).toMatchObject({ address: '203.0.113.66', port: 80 });
    });

    it('a first option that names no client decides that there is no TOA: a later one never wins', () => {
      for (const first of [tfo, zero]) {
        const { answer, refused } = run({ synPeer: proxy, synOptions: [first, forged] }, undefined, 'first');
        expect(answer.source).toBe('peer');
        // A cookie is no address: [cookie, forged] holds one, [0.0.0.0, forged] two.
        expect(refused).toEqual([first === tfo ? '198.51.100.2/tfoCookie/1' : '198.51.100.2/malformed/2']);
        expect(run({ synPeer: proxy, synOptions: [first] }).answer.source).toBe('peer');
      }
    });

    it('only options of the configured kinds count', () => {
      const kind99 = { ...forged, kind: 99 };
      expect(run({ synPeer: proxy, synOptions: [kind99, proxyFirst] }).answer).toMatchObject({ address: '192.0.2.50', source: 'toa' });
    });

    it('an untrusted sender is reported as untrusted, not as ambiguous', () => {
      const { untrusted, refused } = run({ synPeer: stranger, synOptions: [proxyFirst, forged] });
      expect(untrusted).toEqual(['203.0.113.99/254']);
      expect(refused).toEqual([]);
    });
  });
});
