// `node-toa doctor`'s checks of the ACK tap's two sources: CAP_NET_RAW for packet sockets
// (`cap-net-raw`), and the sock_ops program, really loaded and attached to this process's cgroup
// (`sockops`). Either source is enough ({ ack: true } and NODE_TOA_ACK=auto|on take the sock_ops
// program where it loads, else packet sockets), so each check warns only when the other source
// cannot open either; the preload check (preload-check.ts) judges NODE_TOA_ACK from the same answer.
import { readFileSync } from 'node:fs';
import { binding } from '../addon/binding';
import { errnoName, isPermissionError } from '../util/errno';
import type { CheckResult } from './check-result';

/** What doctor found of the ACK tap here (the `ackTap` of its report). */
export interface AckTap {
  /**
   * The source `{ ack: true }` opens here: the sock_ops program first, else packet sockets; null
   * when neither opens (TOA from SYNs only); absent when doctor cannot tell.
   */
  source?: 'sockops' | 'packet' | null;
  /** The sock_ops program loads and attaches here; absent when not tried (no addon, not Linux). */
  sockops?: boolean;
  /** Why it did not, e.g. `bpf(BPF_BTF_LOAD) failed with EPERM: it needs CAP_BPF and CAP_NET_ADMIN, or root`. */
  sockopsError?: string;
  /** This process has CAP_NET_RAW, so packet sockets open; absent when doctor cannot tell. */
  packet?: boolean;
}

const CAP_NET_RAW = 13;

/** Whether CapEff in /proc/<pid>/status text has CAP_NET_RAW; undefined when there is no CapEff line. */
export function hasNetRaw(status: string): boolean | undefined {
  const match = /^CapEff:\s*([0-9a-f]+)$/im.exec(status);
  if (match === null) return undefined;
  return (BigInt(`0x${match[1]}`) & (1n << BigInt(CAP_NET_RAW))) !== 0n;
}

/** probeSockops()'s failure in an operator's words: the step, the errno, and what it usually means. */
export function sockopsFailure(probe: { errno: number; syscall?: string; log?: string }): string {
  const syscall = probe.syscall ?? 'bpf';
  const failed = `${syscall} failed with ${errnoName(probe.errno)}`;
  if (isPermissionError(probe.errno)) return `${failed}: it needs CAP_BPF and CAP_NET_ADMIN, or root`;
  if (syscall.startsWith('open(cgroup2)')) return `${failed}: this process has no cgroup v2 in sight`;
  if (syscall.startsWith('bpf(BPF_PROG_LOAD)')) {
    const last = (probe.log ?? '').trim().split('\n').pop();
    return `${failed}: the kernel refused the program (it needs Linux 5.12 or later)${last ? `; the verifier said: ${last}` : ''}`;
  }
  return failed;
}

/** Tries both sources of the ACK tap in this process: CapEff of `statusFile`, and the sock_ops program. */
export function probeAckTap(statusFile = '/proc/self/status'): AckTap {
  const tap: AckTap = {};
  try {
    const packet = hasNetRaw(readFileSync(statusFile, 'latin1'));
    if (packet !== undefined) tap.packet = packet;
  } catch {
    // cannot tell: left out
  }
  if (binding !== null && binding.tapSupported) {
    const probe = binding.probeSockops();
    tap.sockops = probe.errno === 0;
    if (!tap.sockops) tap.sockopsError = sockopsFailure(probe);
  }
  const source = opensWith('auto', tap);
  if (source !== undefined) tap.source = source;
  return tap;
}

/**
 * The source a tap asked for as `wanted` opens with, given what doctor found: null when it cannot
 * open, undefined when doctor cannot tell.
 */
export function opensWith(wanted: 'auto' | 'sockops' | 'packet', tap: AckTap): 'sockops' | 'packet' | null | undefined {
  const packet = tap.packet === true ? 'packet' : tap.packet === false ? null : undefined;
  if (wanted === 'packet') return packet;
  const sockops = tap.sockops === true ? 'sockops' : tap.sockops === false ? null : undefined;
  if (wanted === 'sockops' || sockops !== null) return sockops;
  return packet;
}

export function checkNetRaw(tap: AckTap): CheckResult {
  const id = 'cap-net-raw';
  if (tap.packet === undefined) return { id, status: 'info', message: "cannot tell whether this process has CAP_NET_RAW (for the ACK tap's packet sockets)" };
  if (tap.packet) {
    return {
      id,
      status: 'ok',
      message: `CAP_NET_RAW: yes; the ACK tap (for proxies that put TOA in the handshake ACK) can open packet sockets${tap.sockops === true ? ' (the sock_ops program comes first; NODE_TOA_ACK=packet chooses these)' : ''}`,
    };
  }
  if (tap.sockops === true) {
    return { id, status: 'info', message: 'CAP_NET_RAW: no, so no packet sockets; the ACK tap reads handshake ACKs through the sock_ops program instead (see sockops)' };
  }
  return {
    id,
    status: 'warn',
    message:
      'CAP_NET_RAW: no; the ACK tap (for proxies that put TOA only in the ACK) cannot open packet sockets ' +
      '(grant it: setcap cap_net_raw+ep $(command -v node), or AmbientCapabilities=CAP_NET_RAW in systemd)',
  };
}

export function checkSockops(tap: AckTap): CheckResult {
  const id = 'sockops';
  if (tap.sockops === undefined) {
    return { id, status: 'info', message: `the sock_ops program was not tried (${binding === null ? 'no native addon' : `no ACK tap on ${process.platform}`})` };
  }
  if (tap.sockops) {
    return {
      id,
      status: 'ok',
      message: "the sock_ops program loads: yes; the ACK tap reads handshake ACKs through it, in this process's cgroup (the first choice of { ack: true }, NODE_TOA_ACK=auto and on)",
    };
  }
  const no = `the sock_ops program loads: no (${tap.sockopsError ?? 'unknown error'})`;
  if (tap.packet === true) return { id, status: 'info', message: `${no}; the ACK tap uses packet sockets instead (CAP_NET_RAW)` };
  const grant = (tap.sockopsError ?? '').includes('needs CAP_BPF')
    ? ' (grant them: setcap cap_bpf,cap_net_admin+ep $(command -v node), or AmbientCapabilities=CAP_BPF CAP_NET_ADMIN in systemd)'
    : '';
  return { id, status: 'warn', message: `${no}; the ACK tap cannot use it${grant}` };
}

/** The doctor's verdict line when the SYN path works: and the handshake ACK, through which source? */
export function ackVerdict(tap: AckTap): string {
  const run = 'run `node-toa inspect --trust <proxy range>` behind the proxy to see it arrive.';
  switch (tap.source) {
    case 'sockops':
    case 'packet':
      return `TOA can be read here, from the SYN and, with the ACK tap (${tap.source === 'sockops' ? 'the sock_ops program' : 'packet sockets'}), from the handshake ACK: ${run}`;
    case null:
      return `TOA can be read here from the SYN only: the ACK tap cannot open (neither the sock_ops program nor packet sockets, see warn above); ${run}`;
    default:
      return `TOA can be read here: ${run}`;
  }
}
