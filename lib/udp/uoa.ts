// DPVS UOA for a dgram socket. DPVS puts the client in an IPv4 option (0x1F) of a flow's first
// datagrams (or in an empty datagram of its own); libuv drops ancillary data, so the socket never
// shows options: a packet tap (native/uoa_tap.h, CAP_NET_RAW) reads them, one per socket, opened
// once the socket has its port. With DPVS's uoa.ko loaded (which also turns its private-protocol
// packets, IP protocol 248, into UDP), its getsockopt answers too. `uoa: true` needs the tap;
// 'auto' opens it when it may, else asks only the module.
import * as fs from 'node:fs';
import type * as dgram from 'node:dgram';
import { binding } from '../addon/binding';
import type { NativeBinding } from '../addon/native';
import type { NativeUoaTap } from '../addon/udp-native';
import type { Endpoint } from '../core/types';
import { mappedIPv4 } from '../util/address';
import { errnoName, isPermissionError } from '../util/errno';
import { warnUoaNone, warnUoaTapFailed } from '../util/warnings';
import type { CompiledUdp } from './options';
import type { UoaLookup } from './receive';

// The tap's receive buffer: options ride only a flow's first datagrams, so little is queued.
const RECEIVE_BUFFER = 1 << 20;

/** Whether DPVS's uoa.ko is loaded (/proc/modules), read once per process. */
let moduleLoaded: boolean | undefined;
export function uoaModuleLoaded(modules = '/proc/modules'): boolean {
  if (modules !== '/proc/modules') return readModules(modules);
  return (moduleLoaded ??= readModules(modules));
}

function readModules(path: string): boolean {
  try {
    return /^uoa\s/m.test(fs.readFileSync(path, 'utf8'));
  } catch {
    return false;
  }
}

/** The dgram socket's file descriptor (its UDP handle's), or -1 before bind and after close. */
export function dgramFd(socket: dgram.Socket): number {
  const state = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const handle = state === undefined ? undefined : (socket as unknown as Record<symbol, { handle?: { fd?: unknown } | null }>)[state]?.handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

function noCapNetRaw(err: number): Error {
  const why = isPermissionError(err) ? 'this process lacks CAP_NET_RAW' : `a packet socket cannot be opened (${errnoName(err)})`;
  return Object.assign(
    new Error(`node-toa: uoa: true needs a packet tap, and ${why}; grant CAP_NET_RAW, or use uoa: 'auto' to read only DPVS's uoa.ko`),
    { code: 'ERR_TOA_NO_CAP_NET_RAW' },
  );
}

/** For uoa: true, whether the tap can open here: throws ERR_TOA_NO_CAP_NET_RAW when not. For 'auto', false. */
export function uoaTapPossible(mode: CompiledUdp['uoa']): boolean {
  const native = binding;
  if (native === null || !native.uoaTapSupported) {
    if (mode === 'on') throw noCapNetRaw(95 /* EOPNOTSUPP: no tap on this platform */);
    return false;
  }
  const err = native.probePacketSocket();
  if (err !== 0 && mode === 'on') throw noCapNetRaw(err);
  return err === 0;
}

class UoaReader implements UoaLookup {
  private tap: NativeUoaTap | null = null;
  private closed = false;

  constructor(
    private readonly socket: dgram.Socket,
    private readonly native: NativeBinding,
    private readonly options: CompiledUdp,
    withTap: boolean,
    private readonly withModule: boolean,
  ) {
    if (!withTap) return;
    let bound = false;
    try {
      bound = socket.address().port > 0;
    } catch {
      bound = false;
    }
    if (bound) this.openTap();
    else socket.once('listening', () => this.openTap());
  }

  private openTap(): void {
    if (this.closed) return;
    const port = this.socket.address().port;
    const tap = new this.native.UoaTap(this.options.capacity, this.options.maxAgeMs);
    const result = tap.open(port, RECEIVE_BUFFER);
    if (result.errno !== 0) {
      tap.close();
      const message = `node-toa: the UOA tap for UDP port ${port} failed: ${result.syscall ?? 'open'}: ${errnoName(result.errno)}`;
      if (this.options.uoa === 'on') this.socket.emit('error', Object.assign(new Error(message), { code: 'ERR_TOA_UOA_TAP' }));
      else warnUoaTapFailed(message);
      return;
    }
    this.tap = tap;
  }

  fresh(peer: Endpoint, localPort: number, known: boolean, empty: boolean): Endpoint | null {
    const address = mappedIPv4(peer.address) ?? peer.address;
    if (this.tap !== null) {
      const client = this.tap.fresh(address, peer.port);
      if (client !== null) return client;
    }
    // The module keeps its mapping for minutes: asked only for a flow not known yet.
    if (this.withModule && (!known || empty)) {
      const fd = dgramFd(this.socket);
      if (fd >= 0) {
        const client = this.native.uoaModuleLookup(fd, address, peer.port, localPort);
        if (typeof client === 'object' && client !== null) return client;
      }
    }
    return null;
  }

  stats() {
    return this.tap?.stats();
  }

  close(): void {
    this.closed = true;
    this.tap?.close();
    this.tap = null;
  }
}

/** The UOA reader of a socket, or null when `uoa` is off. Throws for uoa: true without CAP_NET_RAW. */
export function openUoa(socket: dgram.Socket, options: CompiledUdp): UoaLookup | null {
  if (options.uoa === 'off') return null;
  const withTap = uoaTapPossible(options.uoa);
  const withModule = uoaModuleLoaded() && binding !== null;
  if (!withTap && !withModule) {
    warnUoaNone();
    return null;
  }
  return new UoaReader(socket, binding!, options, withTap, withModule);
}
