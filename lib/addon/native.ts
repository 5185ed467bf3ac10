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

/** The ACK tap's counters (native/toa_tap.h TapCounters). */
export interface NativeTapStats {
  packets: number;
  syns: number;
  toaFound: number;
  /** Packets with options on a tuple whose SYN the tap did not see (forged, or older than it). */
  unmatched: number;
  /** Packets whose sequence number was not the SYN's + 1 (not from who sent the SYN). */
  badSeq: number;
  inserted: number;
  tableSize: number;
  capacity: number;
  evictions: number;
  expired: number;
  drops: number;
  lookups: number;
  hits: number;
  malformed: number;
}

/** One ACK tap: packet sockets in one network namespace plus the 4-tuple table. */
export interface NativeTap {
  /** listenerFd -1: this thread's namespace. */
  open(listenerFd: number): { errno: number; syscall?: string; netns: number; ring: boolean };
  /** errno, 0 on success */
  setPorts(ports: readonly number[]): number;
  drain(kindTable: Uint8Array): number;
  /**
   * The TOA of an accepted socket's handshake ACK or first data packet; null on a miss; -errno.
   * The peer, when known from the saved SYN, saves a getpeername.
   */
  lookup(
    fd: number,
    kindTable: Uint8Array,
    peerAddress?: string,
    peerPort?: number,
  ): { peer: NativeEndpoint; toa: NativeToa } | null | number;
  /** Feeds one packet (IP header first) to the table, bypassing the socket: for tests. */
  offer(packet: Uint8Array, kindTable: Uint8Array): boolean;
  stats(): NativeTapStats;
  close(): void;
}

export interface NativeBinding {
  savedSynSupported: boolean;
  /** errno, 0 on success */
  setSaveSyn(fd: number, on: boolean): number;
  /** 1 | 0, or -errno */
  getSaveSyn(fd: number): number;
  lookup(fd: number, kindTable: Uint8Array, withPeerName: boolean): NativeLookup;
  /** The same as lookup(), written into `record` (decoded by syn-record.ts); returns the errno. */
  readSyn(fd: number, kindTable: Uint8Array, withPeerName: boolean, record: Uint8Array): number;
  parse(packet: Uint8Array, kindTable: Uint8Array): NativePacket;
  /** fd, or -errno */
  createListener(host: string, port: number, backlog: number, reusePort: boolean, ipv6Only: boolean): number;
  /** boolean, or -errno */
  isTcpListener(fd: number): boolean | number;
  defaultKindTable(): Uint8Array;
  /** Packet taps exist on this platform (Linux). */
  tapSupported: boolean;
  /** ringFrames: frames of each socket's mmap'd receive ring (default 4096); 0 reads with recvmmsg. */
  Tap: new (capacity: number, maxAgeMs: number, receiveBuffer: number, ringFrames?: number) => NativeTap;
  /** errno of opening a packet socket here: EPERM without CAP_NET_RAW. */
  probePacketSocket(): number;
}
