// `node-toa doctor`'s UOA check (lib/cli/doctor-uoa.ts): uoa.ko from /proc/modules, protocol-248
// packets sampled by a tap (sent here by a raw socket on lo, as DPVS's private-protocol mode sends
// them), and the kernel's unknown-protocol count without the capability.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkUoa, unknownProtos } from '../../lib/cli/doctor-uoa';
import { checkPreload } from '../../lib/cli/preload-check';
import { itNeeds } from '../helpers/jest/requirements';
import { rawSend, rawSendMissing } from '../helpers/producers/raw-send';
import { uoaOption, uoaPacket } from '../helpers/vectors/udp-vectors';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'doctor-uoa-'));
  fs.writeFileSync(path.join(dir, 'with'), 'uoa 24576 0 - Live 0x0 (OE)\n');
  fs.writeFileSync(path.join(dir, 'without'), 'nf_tables 1 0 - Live 0x0\n');
});
afterAll(() => fs.rmSync(dir, { recursive: true }));

it('reads InUnknownProtos from /proc/net/snmp', () => {
  const snmp = 'Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards\nIp: 1 64 100 0 0 0 7 0\nIcmp: InMsgs\nIcmp: 0\n';
  expect(unknownProtos(snmp)).toBe(7);
  expect(unknownProtos('Icmp: InMsgs\nIcmp: 0\n')).toBeUndefined();
});

it('uoa.ko loaded: ok', async () => {
  const r = await checkUoa(10, path.join(dir, 'with'));
  expect(r).toEqual({ id: 'uoa', status: 'ok', message: expect.stringMatching(/^DPVS's uoa\.ko is loaded/) });
});

itNeeds(rawSendMissing(), 'without uoa.ko, protocol-248 packets arriving are a warning; none, an info', async () => {
  const quiet = await checkUoa(100, path.join(dir, 'without'));
  expect(quiet).toMatchObject({ id: 'uoa', status: 'info', message: expect.stringMatching(/^uoa\.ko is not loaded and no IP protocol 248 packet arrived in 100 ms/) });
  const pending = checkUoa(1500, path.join(dir, 'without'));
  await new Promise((r) => setTimeout(r, 200));
  const packet = uoaPacket({ src: '127.0.0.1', dst: '127.0.0.1', sport: 1000, dport: 2000, options: uoaOption({ address: '192.0.2.1', port: 1 }), payload: [1], privateProtocol: true });
  rawSend([packet, packet]);
  expect(await pending).toMatchObject({
    id: 'uoa',
    status: 'warn',
    message: expect.stringMatching(/^2 packets of IP protocol 248 \(DPVS UOA private-protocol mode\) arrived in 1500 ms, but uoa\.ko is not loaded/),
  });
});

describe('doctor -- COMMAND with NODE_TOA_UDP', () => {
  const found = () => '/app/node_modules/node-toa/dist/preload.js';
  const udpOf = (env: NodeJS.ProcessEnv, cap: boolean | undefined) =>
    checkPreload(['node', '-r', 'node-toa/preload', 'app.js'], { NODE_TOA_TRUST_PROXY: '198.51.100.0/24', ...env }, '/app', cap, found).filter((c) => c.id === 'udp');

  it('no line when unset', () => {
    expect(udpOf({}, true)).toEqual([]);
  });
  it('says what every dgram socket reads', () => {
    expect(udpOf({ NODE_TOA_UDP: 'spp,proxy-protocol:optional,uoa' }, false)).toEqual([
      {
        id: 'udp',
        status: 'info',
        message: 'every dgram socket the app binds reads SPP (required), PROXY v2 (optional), DPVS UOA (auto: no CAP_NET_RAW, so uoa.ko only) from trusted proxies (NODE_TOA_UDP)',
      },
    ]);
  });
  it('fails for a bad value, and for uoa:on without CAP_NET_RAW', () => {
    expect(udpOf({ NODE_TOA_UDP: 'tcp' }, true)).toEqual([
      { id: 'udp', status: 'fail', message: expect.stringMatching(/^NODE_TOA_UDP='tcp' must be spp, proxy-protocol, uoa .*: the preload would stop the process at startup$/) },
    ]);
    expect(udpOf({ NODE_TOA_UDP: 'uoa:on' }, false)).toEqual([
      { id: 'udp', status: 'fail', message: 'NODE_TOA_UDP asks for uoa:on, which needs CAP_NET_RAW, which this process lacks: the preload would stop the process at startup' },
    ]);
    expect(udpOf({ NODE_TOA_UDP: 'uoa:on' }, true)[0].status).toBe('info');
  });
});
