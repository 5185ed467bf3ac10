// Sends whole IPv4 packets (header, options and all) through a raw socket (IPPROTO_RAW, so
// IP_HDRINCL: the kernel fills only the checksum and total length), as a proxy that writes its own
// IP options would: on lo they come back in as received packets. Needs CAP_NET_RAW (python3's
// socket module does the sending; node has no raw sockets).
import { spawnSync } from 'node:child_process';

const SCRIPT = [
  'import socket, sys',
  's = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)',
  'for h in sys.argv[1:]:',
  '    b = bytes.fromhex(h)',
  "    s.sendto(b, ('%d.%d.%d.%d' % (b[16], b[17], b[18], b[19]), 0))",
  's.close()',
].join('\n');

export function rawSend(packets: Uint8Array[]): void {
  const r = spawnSync('python3', ['-c', SCRIPT, ...packets.map((p) => Buffer.from(p).toString('hex'))], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`raw send failed (${r.status}): ${r.stderr}`);
}

/** Why raw sends cannot run here, or null. */
export function rawSendMissing(): string | null {
  if (process.platform !== 'linux') return 'raw IPv4 sockets with IP_HDRINCL on lo need Linux';
  if (process.getuid?.() !== 0) return 'raw sockets need root (CAP_NET_RAW)';
  const r = spawnSync('python3', ['-c', 'import socket'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return 'python3 is not installed';
  return null;
}
