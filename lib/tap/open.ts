// Opens the ACK tap of a listening server (native/tap_sockets.h), in the network namespace of its
// listening socket, and says clearly why when it cannot.
import type { AddressInfo, Server } from 'node:net';
import { binding } from '../addon/binding';
import { errnoName, isPermissionError } from '../util/errno';
import { socketFd } from '../util/socket-fd';
import { warnAckNotTcp, warnAckUnsupported } from '../util/warnings';
import type { CompiledTap, TapSource } from './options';
import { OpenTap, addTap, hasTap, removeTap } from './registry';
import type { Sources } from './sources';

// Room for a few thousand queued packets between drains (without a ring); root may go past
// net.core.rmem_max.
const RECEIVE_BUFFER = 4 << 20;

type TapError = Error & { code: string; errno?: number; syscall?: string };

function tapError(code: string, message: string, errno?: number, syscall?: string): TapError {
  const error = new Error(message) as TapError;
  error.code = code;
  if (errno !== undefined) error.errno = -errno;
  if (syscall !== undefined) error.syscall = syscall;
  return error;
}


function noCapability(errno: number, syscall: string, source: TapSource): TapError {
  const orBpf = source === 'packet' ? '' : ' (or CAP_BPF and CAP_NET_ADMIN, for the sock_ops program, which did not load either)';
  return tapError(
    'ERR_TOA_NO_CAP_NET_RAW',
    `node-toa: { ack: true } needs the CAP_NET_RAW capability${orBpf} to open a packet socket that reads TOA ` +
      `from handshake ACKs (${syscall} failed with ${errnoName(errno)}). TOA in SYNs still works ` +
      `without it: drop { ack: true }, or grant the capability (root in a container usually has it; ` +
      `docker run --cap-add NET_RAW; setcap cap_net_raw+ep on the node binary).`,
    errno,
    syscall,
  );
}

/**
 * Throws now, where the user passed `{ ack: true }`, when this process cannot open a tap at all.
 * Returns false (with a warning) where taps do not exist (not Linux): the SYN path still works.
 * `beforeListen`: the tap opens once a server that does not listen yet has listened (enable()
 * before listen()); the sock_ops program is then attached from now on, so it sees that listen()
 * and flags the listener for its cookie SYN-ACKs.
 */
export function checkTapSupport(tap: CompiledTap, beforeListen: boolean): boolean {
  if (binding === null || !binding.tapSupported) {
    warnAckUnsupported();
    return false;
  }
  if (tap.source !== 'packet') {
    const kernel = binding.probeSockops(beforeListen);
    if (kernel.errno === 0) return true;
    if (tap.source === 'sockops') throw sockopsError(undefined, kernel);
  }
  const err = binding.probePacketSocket();
  if (isPermissionError(err)) throw noCapability(err, 'socket(AF_PACKET)', tap.source);
  if (err !== 0) {
    throw tapError('ERR_TOA_TAP_OPEN', `node-toa: cannot open a packet socket: ${errnoName(err)}`, err, 'socket');
  }
  return true;
}

/**
 * Opens the tap of a listening server, in the network namespace of its listening socket. Throws
 * an Error with a `code` when it cannot. Does nothing for a server that has one. `sources`: the
 * trusted proxies (tap/sources.ts), so that no other sender's packet reaches user space.
 */
export function openTap(server: Server, tap: CompiledTap, sources: Sources): void {
  if (binding === null || !binding.tapSupported) return;
  if (hasTap(server)) return; // this copy or another one tapped it already
  const address = server.address();
  if (address === null || typeof address === 'string') {
    warnAckNotTcp();
    return;
  }
  const port = (address as AddressInfo).port;
  // A node:cluster worker has no listening fd (the primary accepts): -1 opens the tap in this
  // thread's own namespace, where the port is.
  const fd = socketFd(server);
  const native = new binding.Tap(tap.capacity, tap.maxAgeMs, RECEIVE_BUFFER);
  if (tap.source !== 'packet') {
    const kernel = native.openSockops(fd, port, sources);
    if (kernel.errno === 0) {
      track(server, new OpenTap(native, port, kernel.netns, 'sockops'));
      return;
    }
    if (tap.source === 'sockops') {
      native.close();
      throw sockopsError(port, kernel);
    }
  }
  const opened = native.open(fd);
  let err = opened.errno;
  let syscall = opened.syscall ?? 'socket(AF_PACKET)';
  if (err === 0) {
    err = native.setFilter([port], sources);
    syscall = 'setsockopt(SO_ATTACH_FILTER)';
  }
  if (err !== 0) {
    native.close();
    if (isPermissionError(err) && syscall.startsWith('socket')) throw noCapability(err, syscall, tap.source);
    const hint = syscall.startsWith('setns')
      ? " (the listening socket lives in another network namespace; entering it needs CAP_SYS_ADMIN)"
      : '';
    throw tapError(
      'ERR_TOA_TAP_OPEN',
      `node-toa: cannot open the ACK tap for port ${port}: ${syscall} failed with ${errnoName(err)}${hint}`,
      err,
      syscall,
    );
  }
  track(server, new OpenTap(native, port, opened.netns, 'packet'));
}

function track(server: Server, open: OpenTap): void {
  addTap(server, open);
  server.once('close', () => removeTap(server, open));
}

function sockopsError(port: number | undefined, opened: { errno: number; syscall?: string; log?: string }): TapError {
  const syscall = opened.syscall ?? 'bpf';
  const why = isPermissionError(opened.errno) ? ' (loading and attaching it needs CAP_BPF and CAP_NET_ADMIN, or root)' : '';
  const log = opened.log ? `\n${opened.log.trim().split('\n').slice(-8).join('\n')}` : '';
  return tapError(
    'ERR_TOA_TAP_OPEN',
    `node-toa: cannot open the ACK tap${port === undefined ? '' : ` for port ${port}`} through the sock_ops program: ${syscall} failed with ${errnoName(opened.errno)}${why}${log}`,
    opened.errno,
    syscall,
  );
}

