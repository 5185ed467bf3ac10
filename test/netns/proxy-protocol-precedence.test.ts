// Precedence with TOA: a client whose own kernel writes a TOA into its SYN (sock_ops cgroup) and
// which also sends a PROXY header. The header is the answer (documented precedence: the header
// first, then TOA); without a header the same connection's TOA is, so both were really there.
import * as http from 'node:http';
import type * as net from 'node:net';
import * as path from 'node:path';
import * as toa from '../../lib/index';
import { DST4, SRC4, proxyV2 } from '../helpers/vectors/proxy-vectors';
import { ToaCgroup, describeSockops } from '../helpers/sockops';

const CLIENT = path.join(__dirname, '..', 'helpers', 'children', 'proxy-header-client.js');
const TRUST = { trustProxy: 'loopback' } as const;

describeSockops('PROXY header and a SYN TOA on one connection', () => {
  let group: ToaCgroup;
  let server: http.Server;
  let port = 0;

  beforeAll(async () => {
    group = await ToaCgroup.create({ packets: ['syn'] });
    server = http.createServer((req, res) => res.end(JSON.stringify(toa.realRemoteAddress(req.socket, TRUST))));
    await toa.listen(server, { port: 0, host: '127.0.0.1', proxyProtocol: 'optional', ...TRUST });
    port = (server.address() as net.AddressInfo).port;
  }, 60_000);

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await group?.close();
  });

  async function request(hex: string): Promise<{ answer: toa.RealAddress; localPort: number }> {
    const r = await group.run(process.execPath, [CLIENT, String(port), hex], { timeoutMs: 15_000 });
    if (r.code !== 0) throw new Error(`client failed (${r.code ?? r.signal}): ${r.stderr}`);
    const { localPort, response } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { localPort: number; response: string };
    return { answer: JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)), localPort };
  }

  test('without a header: the TOA of the SYN', async () => {
    const { answer, localPort } = await request('-');
    expect(answer).toMatchObject({ source: 'toa', packet: 'syn', ...group.expected(localPort) });
  });

  test('with a header as well: the header wins', async () => {
    const header = Buffer.from(proxyV2({ source: SRC4, destination: DST4 })).toString('hex');
    const { answer, localPort } = await request(header);
    expect(group.expected(localPort).address).not.toBe(SRC4.address);
    expect(answer).toMatchObject({
      source: 'proxy-protocol',
      address: SRC4.address,
      port: SRC4.port,
      proxy: { address: '127.0.0.1' },
      destination: { address: DST4.address, port: DST4.port },
    });
  });
});
