// The raw addon's shape. Private: only binding.ts and the resolver see it.

export interface NativeEndpoint {
  family: 'IPv4' | 'IPv6';
  address: string;
  port: number;
}

export interface NativeToa extends NativeEndpoint {
  kind: number;
  length: number;
  vid?: number;
  vip?: NativeEndpoint;
}

/** What one `lookup()` learnt about an accepted socket. */
export interface NativeLookup {
  /** 0, or the errno of getsockopt(TCP_SAVED_SYN). */
  errno: number;
  /** A saved SYN was there (it is gone now: the kernel frees it on read). */
  syn: boolean;
  /** The SYN's IP source and TCP source port: the true L3 peer. */
  peer?: NativeEndpoint;
  toa?: NativeToa;
  /** getpeername(), only when asked for. */
  name?: NativeEndpoint;
  nameErrno?: number;
}

export interface NativePacket {
  ok: boolean;
  src?: NativeEndpoint;
  dst?: NativeEndpoint;
  flags?: number;
  payloadLength?: number;
  toa?: NativeToa;
}

export interface NativeBinding {
  savedSynSupported: boolean;
  /** errno, 0 on success */
  setSaveSyn(fd: number, on: boolean): number;
  /** 1 | 0, or -errno */
  getSaveSyn(fd: number): number;
  lookup(fd: number, kindTable: Uint8Array, withPeerName: boolean): NativeLookup;
  parse(packet: Uint8Array, kindTable: Uint8Array): NativePacket;
  /** fd, or -errno */
  createListener(host: string, port: number, backlog: number, reusePort: boolean, ipv6Only: boolean): number;
  /** boolean, or -errno */
  isTcpListener(fd: number): boolean | number;
  defaultKindTable(): Uint8Array;
}
