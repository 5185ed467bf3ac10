// End to end, one vendor layout at a time: a full-NAT proxy in a network namespace writes the
// option as the vendor documents it, into the SYN, the handshake ACK or the first data packet, and
// a Node server in this process reads it with the default kinds.
//
// Alibaba Cloud Anti-DDoS Proxy, IPv6 instance in v6tov4 mode ("Obtain originating IP addresses
// behind Anti-DDoS Proxy"): an IPv6 client reaches an IPv4 origin; the last handshake ACK carries
// option 249, length 40: the client's port, its IPv6 address, then 20 bytes about the node. 40
// bytes is the whole TCP option space, so the harness sends that packet with no other option.
import * as http from 'node:http';
import { ipv6Bytes } from '../helpers/vectors/packets';
import { ADDR, ToaNet, describeE2E, useToaNet, type PacketInfo, type ToaRule } from '../helpers/netns/toa-net';
import type { EnableOptions, RealAddress, ToaOptions } from '../../lib/index';
import * as toa from '../../lib/index';
import { closeAfterEach } from '../helpers/sockets/pair';

const trustProxy = [ADDR.lip4, ADDR.lip6];

type Where = 'syn' | 'ack' | 'data';

/** What the server needs to see TOA in that packet: the saved SYN alone, or the ACK tap too. */
const ENABLE: Record<Where, EnableOptions | undefined> = { syn: undefined, ack: { ack: true }, data: { ack: true } };

/** The packet (as the server got it) that carries the rule's option, told apart by flags and payload. */
function carrier(where: Where) {
  return (p: PacketInfo): boolean =>
    where === 'syn' ? p.flags === 'S' : where === 'ack' ? p.flags === 'A' && p.payloadLen === 0 : p.payloadLen! > 0;
}

function hex(bytes: number[]): string {
  return Buffer.from(bytes).toString('hex');
}

describeE2E('vendor layouts end to end: Alibaba Anti-DDoS v6tov4 (kind 249, 40 bytes)', () => {
  let netns: ToaNet;
  const servers = closeAfterEach();
  useToaNet((created) => (netns = created));

  /** An HTTP server in the namespace answering realRemoteAddress(req.socket) as JSON (default kinds unless given). */
  async function serve(enableOptions: EnableOptions | undefined, kinds?: ToaOptions['kinds']) {
    const options: ToaOptions = kinds === undefined ? { trustProxy } : { trustProxy, kinds };
    const server = http.createServer((req, res) => {
      res.end(JSON.stringify(toa.realRemoteAddress(req.socket, options)));
    });
    servers.push(server);
    toa.enable(server, enableOptions);
    return netns.serve(server);
  }

  /** One request from `client` to `vip` through the proxy with `rule`; the answer and the packets the server got. */
  async function connect(where: Where, client: string, vip: string, rule: ToaRule, kinds?: ToaOptions['kinds']) {
    await netns.rule(client, { where, ...rule });
    const port = await serve(ENABLE[where], kinds);
    const result = await netns.request({ protocol: 'http', vip, port, localAddress: client, path: '/' });
    expect(result.responses[0].status).toBe(200);
    const answer = JSON.parse(result.responses[0].body) as RealAddress;
    const proxyPort = (await netns.conns()).find((c) => c.client === client && c.cport === result.localPort)?.lport;
    const c2s = (await netns.packets({ dir: 'c2s' })).filter((p) => p.dport === port && p.sport === proxyPort);
    return { answer, localPort: result.localPort, c2s };
  }

  describe.each<Where>(['syn', 'ack', 'data'])('option 249 in the %s', (where) => {
    it('an IPv6 client over an IPv4 connection: the client, kind 249, in its own family', async () => {
      const client = ADDR.clients6[1];
      const { answer, localPort, c2s } = await connect(where, client, ADDR.vip6to4, { format: 'ali-ddos' });
      expect(answer).toEqual({
        address: client,
        port: localPort,
        family: 'IPv6',
        source: 'toa',
        kind: 249,
        packet: where,
        proxy: { address: ADDR.lip4, port: expect.any(Number), family: 'IPv4' },
      });
      // The option really rode that packet alone (40 bytes fill the option space) and no other.
      const tagged = c2s.filter((p) => p.options!.some((o) => o.kind === 249));
      expect(tagged).toHaveLength(1);
      expect(carrier(where)(tagged[0])).toBe(true);
      expect(tagged[0].options).toEqual([{ kind: 249, len: 40, hex: expect.stringMatching(/^f928/) }]);
    });

    it('an IPv4-mapped client (::ffff:a.b.c.d) is answered as the IPv4 client', async () => {
      const client = ADDR.clients4[1];
      const { answer, localPort } = await connect(where, client, ADDR.vip4, { format: 'ali-ddos' });
      expect(answer).toMatchObject({ address: client, port: localPort, family: 'IPv4', source: 'toa', kind: 249, packet: where });
    });

    it('from an untrusted proxy: the peer', async () => {
      const client = ADDR.clients6[2];
      const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
      try {
        const before = toa.stats().refused.untrusted;
        const { answer, c2s } = await connect(where, client, ADDR.vip6to4, { format: 'ali-ddos', lip: ADDR.untrusted4 });
        expect(answer).toEqual({ address: ADDR.untrusted4, port: expect.any(Number), family: 'IPv4', source: 'peer' });
        expect(c2s.filter((p) => p.options!.some((o) => o.kind === 249 && o.len === 40))).toHaveLength(1);
        // Refused for trust, not missed.
        expect(toa.stats().refused.untrusted).toBe(before + 1);
      } finally {
        emitWarning.mockRestore();
      }
    });

    it('kind 249 with length 20 (port, IPv6) is not read, even with kinds: [249]: the peer', async () => {
      const client = ADDR.clients6[3];
      // The DPVS/LVS 20-byte shape under kind 249: a length this kind does not have.
      const option = [249, 20, 0x9d, 0x7d, ...ipv6Bytes(client)];
      const { answer, c2s } = await connect(where, client, ADDR.vip6to4, { raw: hex(option) }, [249]);
      expect(answer).toEqual({ address: ADDR.lip4, port: expect.any(Number), family: 'IPv4', source: 'peer' });
      expect(c2s.filter((p) => p.options!.some((o) => o.kind === 249 && o.len === 20))).toHaveLength(1);
    });

    it('a :: client names no one: the peer', async () => {
      const client = ADDR.clients6[4];
      const before = toa.stats().refused.malformed;
      const { answer, c2s } = await connect(where, client, ADDR.vip6to4, { format: 'ali-ddos', address: '::' });
      expect(answer).toEqual({ address: ADDR.lip4, port: expect.any(Number), family: 'IPv4', source: 'peer' });
      expect(c2s.filter((p) => p.options!.some((o) => o.kind === 249 && o.len === 40))).toHaveLength(1);
      // Read, and refused as naming no client (not passed over as an unknown option).
      expect(toa.stats().refused.malformed).toBe(before + 1);
    });
  });

  it('kinds without 249 do not read it: the peer', async () => {
    const client = ADDR.clients6[5];
    const { answer } = await connect('ack', client, ADDR.vip6to4, { format: 'ali-ddos' }, [200, 253, 254]);
    expect(answer).toEqual({ address: ADDR.lip4, port: expect.any(Number), family: 'IPv4', source: 'peer' });
  });
});
