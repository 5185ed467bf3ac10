// `node-toa doctor`'s UOA check (lib/cli/doctor-uoa.ts): uoa.ko from /proc/modules, protocol-248
// packets sampled by a tap (sent here by a raw socket on lo, as DPVS's private-protocol mode sends
// them), and the kernel's unknown-protocol count without the capability.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkUoa, unknownProtos } from '../lib/cli/doctor-uoa';
import { itNeeds } from './helpers/requirements';
import { rawSend, rawSendMissing } from './helpers/raw-send';
import { uoaOption, uoaPacket } from './helpers/udp-vectors';

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
