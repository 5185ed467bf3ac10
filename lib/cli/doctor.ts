// `node-toa doctor`: can this machine read TOA, and if not, why? Each check returns a structured
// result (tested on its own); the CLI prints one line per check. The checks look beneath the
// public API on purpose (the addon, the raw saved-SYN read): they test those layers themselves.
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { addonFile, binding, loadError, savedSynAvailable } from '../addon/binding';
import { buildHint } from '../addon/build-hint';
import { RECORD_SIZE, decodeRecord } from '../addon/record';
import { compileKinds } from '../core/kinds';
import { errnoName } from '../util/errno';
import { toaModuleLoaded, toaModuleNames } from '../util/kernel-module';
import { checkNetRaw, checkSockops, probeAckTap, type AckTap } from './doctor-ack';
import { checkUoa } from './doctor-uoa';
import type { CheckResult } from './check-result';

export type { CheckResult, Status } from './check-result';
export { hasNetRaw, type AckTap } from './doctor-ack';

/** Which file node-gyp-build loads for this package, and whether it is a prebuild. */
export function addonOrigin(file: string): 'prebuild' | 'local build' | 'debug build' | 'unknown' {
  const parts = file.split(path.sep);
  if (parts.includes('prebuilds')) return 'prebuild';
  if (parts.includes('Release')) return 'local build';
  if (parts.includes('Debug')) return 'debug build';
  return 'unknown';
}

export function checkAddon(): CheckResult {
  if (binding === null) {
    return {
      id: 'addon',
      status: 'fail',
      message:
        `the native addon did not load (${loadError?.message.split('\n')[0] ?? 'unknown error'}); ` +
        `answers are the socket's own peer; to build it: ${buildHint()}, then npm rebuild node-toa`,
    };
  }
  const file = addonFile ?? '';
  const where = file === '' ? 'an unknown file' : `${addonOrigin(file)}: ${path.relative(process.cwd(), file) || file}`;
  return { id: 'addon', status: 'ok', message: `native addon loaded from ${where}` };
}

interface SynProbe {
  setErrno: number;
  enabled: boolean;
  readErrno: number;
  syn: boolean;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A real listening socket with TCP_SAVE_SYN, a real loopback connection, a real SYN read. */
async function probeSavedSyn(native: NonNullable<typeof binding>, host: string): Promise<SynProbe> {
  const server = net.createServer({ pauseOnConnect: true });
  const sockets: net.Socket[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const listenFd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    const setErrno = native.setSaveSyn(listenFd, true);
    const enabled = native.getSaveSyn(listenFd) === 1;
    if (setErrno !== 0) return { setErrno, enabled, readErrno: 0, syn: false };
    const port = (server.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect(port, host);
    sockets.push(client);
    client.on('error', () => undefined);
    const socket = await accepted;
    sockets.push(socket);
    const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
    const record = new Uint8Array(RECORD_SIZE);
    const readErrno = native.makeSynReader(compileKinds(undefined), record, false)(fd);
    return { setErrno, enabled, readErrno, syn: decodeRecord(record).savedSyn === true };
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
}

export async function checkSavedSyn(): Promise<CheckResult> {
  const id = 'saved-syn';
  if (binding === null) return { id, status: 'fail', message: 'cannot test TCP_SAVE_SYN without the native addon' };
  if (!savedSynAvailable) {
    return { id, status: 'fail', message: `${process.platform} has no TCP_SAVE_SYN: the saved SYN (and so TOA) is Linux only` };
  }
  let probe: SynProbe | undefined;
  let error: Error | undefined;
  for (const host of ['127.0.0.1', '::1']) {
    try {
      probe = await withTimeout(probeSavedSyn(binding, host), 3000, `loopback connection to ${host}`);
      break;
    } catch (e) {
      error = e as Error;
    }
  }
  const kernel = `Linux ${os.release()}`;
  if (probe === undefined) {
    return { id, status: 'fail', message: `could not make a loopback connection to test with (${error?.message ?? 'unknown'})` };
  }
  if (probe.setErrno !== 0) {
    return {
      id,
      status: 'fail',
      message: `setsockopt(TCP_SAVE_SYN) failed with ${errnoName(probe.setErrno)} on ${kernel}: this kernel cannot save SYNs (needs Linux >= 4.2)`,
    };
  }
  if (probe.readErrno !== 0) {
    return {
      id,
      status: 'fail',
      message: `getsockopt(TCP_SAVED_SYN) failed with ${errnoName(probe.readErrno)} on ${kernel}`,
    };
  }
  if (!probe.syn) {
    return {
      id,
      status: 'fail',
      message:
        `TCP_SAVE_SYN was set, but the kernel kept no SYN for a loopback connection (${kernel}); ` +
        'with net.ipv4.tcp_syncookies = 2 no connection keeps its SYN',
    };
  }
  return { id, status: 'ok', message: `TCP_SAVE_SYN works: the kernel saved a loopback connection's SYN and gave it back (${kernel})` };
}

/** Explains a value of /proc/sys/net/ipv4/tcp_syncookies. */
export function explainSyncookies(value: string): CheckResult {
  const id = 'syncookies';
  switch (value.trim()) {
    case '0':
      return { id, status: 'ok', message: 'net.ipv4.tcp_syncookies = 0: never syncookies; every accepted connection keeps its SYN' };
    case '1':
      return {
        id,
        status: 'ok',
        message:
          'net.ipv4.tcp_syncookies = 1: syncookies only when a SYN queue overflows (a SYN flood); a connection ' +
          'accepted by cookie has no saved SYN and answers as its peer. Size the queue: net.ipv4.tcp_max_syn_backlog, listen backlog',
      };
    case '2':
      return {
        id,
        status: 'fail',
        message: 'net.ipv4.tcp_syncookies = 2: syncookies always, so no connection keeps its SYN and TOA cannot be read; set it to 1',
      };
    default:
      return { id, status: 'warn', message: `net.ipv4.tcp_syncookies has an unknown value '${value.trim()}'` };
  }
}

export function checkSyncookies(file = '/proc/sys/net/ipv4/tcp_syncookies'): CheckResult {
  try {
    return explainSyncookies(readFileSync(file, 'latin1'));
  } catch (error) {
    return { id: 'syncookies', status: 'info', message: `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
}

export { toaModuleNames };

export function checkToaModule(): CheckResult {
  const id = 'toa-module';
  if (!toaModuleLoaded()) {
    return { id, status: 'ok', message: 'no vendor TOA kernel module loaded (none is needed)' };
  }
  let names: string[] = [];
  try {
    names = toaModuleNames(readFileSync('/proc/modules', 'latin1'));
  } catch {
    // the verdict stands; only the names are missing
  }
  return {
    id,
    status: 'info',
    message:
      `a vendor TOA kernel module is loaded (${names.join(', ') || 'toa'}): it rewrites getpeername(), so ` +
      'socket.remoteAddress may already be the client; node-toa also reads getpeername and reports that as source "kernel"',
  };
}

export interface DoctorReport {
  checks: CheckResult[];
  /** The SYN path cannot work here: the addon is missing or the kernel keeps no SYN. */
  failed: boolean;
  /** The ACK tap's sources here, and the one it opens with (doctor-ack.ts). */
  ackTap: AckTap;
}

export async function runDoctor(): Promise<DoctorReport> {
  const ackTap = probeAckTap();
  const checks: CheckResult[] = [
    checkAddon(),
    await checkSavedSyn(),
    checkSyncookies(),
    checkToaModule(),
    checkNetRaw(ackTap),
    checkSockops(ackTap),
    await checkUoa(),
  ];
  return { checks, failed: checks.some((c) => c.status === 'fail'), ackTap };
}
