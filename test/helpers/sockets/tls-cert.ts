// A self-signed certificate made by the test itself with the openssl CLI, in a temporary
// directory removed right after. Valid for the harness's VIPs and backends and for loopback, so
// clients verify it for real (ca: cert) instead of turning verification off.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TestCert {
  key: string;
  cert: string;
}

const ADDRESSES = [
  '127.0.0.1',
  '::1',
  // ADDR.vip4, vip4to6, vip6, vip6to4, rip4, rip6 of test/helpers/netns/toa-net.ts
  '198.51.100.10',
  '198.51.100.11',
  '2001:db8:a::10',
  '2001:db8:a::11',
  '203.0.113.10',
  '2001:db8:d::10',
];

let made: TestCert | undefined;

export function selfSignedCert(): TestCert {
  if (made !== undefined) return made;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-toa-cert-'));
  try {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    const san = ['DNS:localhost', ...ADDRESSES.map((a) => `IP:${a}`)].join(',');
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=node-toa test',
        '-addext', `subjectAltName=${san}`,
      ],
      { stdio: 'pipe', timeout: 20000 },
    );
    made = { key: fs.readFileSync(key, 'utf8'), cert: fs.readFileSync(cert, 'utf8') };
    return made;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
