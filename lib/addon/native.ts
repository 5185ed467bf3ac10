// The raw addon's shape (native/addon.cc, native/tap_addon.cc, native/proxy_addon.cc). Private: only the addon loader,
// the record decoders, the resolver, the tap and the PROXY gate see it.

import type { Endpoint } from '../util/endpoint';


/** Why a TOA-shaped option holds no client (native/toa_parse.h OptionStatus). */
export const OPTION_STATUS = Object.freeze({
  usable: 0,
  /** kind 253/254 with TCP Fast Open's ExID F9 89, in a SYN */
  tfoCookie: 1,
  /** 0.0.0.0 or :: */
  unspecified: 2,
  /** Alibaba CDN layout whose version byte is not 1 */
  badVersion: 3,
});

/** One TOA-shaped option: a configured kind whose length fits one of the kind's layouts. */
export interface NativeToa extends Endpoint {
  kind: number;
  length: number;
  /** The layout bit it was decoded with (core/kinds.ts LAYOUT_BITS). */
  layout: number;
  /** OPTION_STATUS: 0 when the option names a client. */
  status: number;
  vid?: number;
  vip?: Endpoint;
}

/** What parseProxyHeader() found at the start of a buffer (native/proxy_parse.h ProxyStatus). */
export const PROXY_STATUS = Object.freeze({
  /** a whole header, `length` bytes */
  ok: 0,
  /** a valid beginning of a v1 or v2 header: more bytes are needed */
  incomplete: 1,
  /** the first bytes can be neither signature ("PROXY " or the v2 one) */
  notProxy: 2,
  /** a PROXY header, broken: see `reason` */
  malformed: 3,
  /** the header is, or will be, longer than maxSize (a v1 line: longer than min(maxSize, 107)) */
  tooLarge: 4,
});

/** One parsed PROXY protocol header (native/proxy_addon.cc HeaderValue). */
export interface NativeProxyHeader {
  /** PROXY_STATUS */
  status: number;
  /**
   * ok: bytes the header takes. incomplete and tooLarge: the total a v2 header will take once its
   * 16-byte fixed part is in, else 0. 0 otherwise.
   */
  length: number;
  /**
   * malformed and tooLarge: a short English reason ('bad CRC32c', 'v1 line without CRLF', ...;
   * tooLarge: 'header longer than maxSize'); '' otherwise
   */
  reason: string;
  /** 1 | 2 once the whole signature is in; 0 before, and for notProxy */
  version: number;
  /** v1 is always 'PROXY' */
  command: 'PROXY' | 'LOCAL';
  /** v1 UNKNOWN -> 'unspec'; a v2 LOCAL's undefined family byte -> 'unspec' */
  family: 'IPv4' | 'IPv6' | 'unix' | 'unspec';
  /** v1 -> 'stream' (TCP4/TCP6) or 'unspec' (UNKNOWN) */
  transport: 'stream' | 'dgram' | 'unspec';
  /** ok with the PROXY command and an IPv4/IPv6 family only; ::ffff:a.b.c.d stays IPv6 */
  source?: Endpoint;
  destination?: Endpoint;
  /**
   * ok: the v2 top-level TLVs in order (the CRC32c TLV included), as flat triples
   * [type, valueOffset, valueLength]: the value is data.subarray(valueOffset, valueOffset + valueLength).
   */
  tlvs: number[];
  /** ok, when a PP2_TYPE_SSL TLV was there: its client bits, verify word, and sub-TLV triples */
  ssl?: { client: number; verify: number; tlvs: number[] };
  /** ok: a CRC32c TLV was there (and matched: a mismatch is malformed) */
  crc32c: boolean;
}

/** Offsets of the byte record a makeProxyReader() reader fills (native/proxy_addon.cc `layout`). */
export interface NativeProxyRecordLayout {
  size: number;
  status: number;
  reason: number;
  version: number;
  command: number;
  family: number;
  flags: number;
  /** u32 big-endian */
  length: number;
  /** 16 address bytes (IPv4 in the first 4), then the port big-endian */
  source: number;
  destination: number;
  flagAddresses: number;
  flagTlvs: number;
  flagCrc: number;
  /** the command byte of LOCAL, the family byte of IPv6 */
  commandLocal: number;
  familyInet6: number;
  /** what a reader returns, negated: nothing decided (read the stream), a header taken in part */
  undecided: number;
  broken: number;
  /** the reason texts, by the record's reason byte */
  reasons: string[];
}

/** Offsets of the byte record a SYN reader fills (native/record_layout.h). */
export interface NativeRecordLayout {
  size: number;
  flags: number;
  peer: number;
  name: number;
  count: number;
  options: number;
  ackCount: number;
  ackOptions: number;
  optionSize: number;
  optionKind: number;
  optionLength: number;
  optionLayout: number;
  optionStatus: number;
  optionClient: number;
  optionVid: number;
  optionVip: number;
  flagSyn: number;
  flagPeer: number;
  flagName: number;
  flagAck: number;
  flagAckData: number;
  layoutVtoa: number;
}

/** What one `testing.lookup()` learnt about an accepted socket. */
export interface NativeLookup {
  /** 0, or the errno of getsockopt(TCP_SAVED_SYN). */
  errno: number;
  /** A saved SYN was there (it is gone now: the kernel frees it on read). */
  syn: boolean;
  /** The SYN's IP source and TCP source port: the true L3 peer. */
  peer?: Endpoint;
  options?: NativeToa[];
  /** getpeername(), only when asked for. */
  name?: Endpoint;
  nameErrno?: number;
}

export interface NativePacket {
  ok: boolean;
  src?: Endpoint;
  dst?: Endpoint;
  flags?: number;
  payloadLength?: number;
  options?: NativeToa[];
}

/** The ACK tap's counters (native/tap_table.h, TOA_TAP_STATS). */
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
  /** Lookups that refused an entry of another connection on the same 4-tuple (or kept before a loss). */
  stale: number;
  /** sock_ops: connections the program never saw (their listener was made outside this process's cgroup). */
  unseen: number;
  /** sock_ops: lookups the program's table of recent connections did not answer (one bpf() call each). */
  storageLookups: number;
}

/** What the tap kept of a connection: the options of the first packet after its SYN that had any. */
export interface NativeTapHit {
  peer: Endpoint;
  options: NativeToa[];
  packet: 'ack' | 'data';
  /** The options of the SYN the tap held, when the lookup had no saved SYN (a syncookie). */
  synOptions?: NativeToa[];
}

/** One ACK tap: packet sockets in one network namespace plus the 4-tuple table. */
export interface NativeTap {
  /** listenerFd -1: this thread's namespace. */
  open(listenerFd: number): { errno: number; syscall?: string; netns: number; ring: boolean };
  /**
   * Reads through the server's sock_ops program instead of packet sockets; `sources` as
   * setFilter's (whose syncookie SYNs it keeps). `log`: the verifier's, when the kernel refused it.
   */
  openSockops(listenerFd: number, port: number, sources?: Uint8Array | null): { errno: number; syscall?: string; log?: string; netns: number };
  /**
   * errno, 0 on success. `sources`: the trusted ranges, packed 18 bytes each (family 4|6, prefix
   * bits, 16 address bytes), at most 64; null: every source passes.
   */
  setFilter(ports: readonly number[], sources?: Uint8Array | null): number;
  drain(kindTable: Uint8Array): number;
  /**
   * For the tests: what a SYN reader bound to this tap takes for an accepted socket; null on a
   * miss; -errno. `nextSeq`: the sequence number a saved SYN would name (absent: as without one).
   */
  lookup(fd: number, kindTable: Uint8Array, nextSeq?: number): NativeTapHit | null | number;
  stats(): NativeTapStats;
  close(): void;
}

/** Functions only the tests call: the parser and the syscalls without the record. */
export interface NativeTesting {
  lookup(fd: number, kindTable: Uint8Array, withPeerName: boolean): NativeLookup;
  parse(packet: Uint8Array, kindTable: Uint8Array): NativePacket;
  defaultKindTable(): Uint8Array;
  /** Fills `record` as readSyn() would for a saved SYN `packet` and a getpeername `name`. */
  record(packet: Uint8Array, kindTable: Uint8Array, record: Uint8Array, nameAddress?: string, namePort?: number): void;
  /** Feeds one packet (IP header first) to a tap's table, bypassing its sockets. */
  offer(tap: NativeTap, packet: Uint8Array, kindTable: Uint8Array): boolean;
  /** errno: 0 when the sock_ops program keeps socket storage for the connection of `fd`, ENOENT when none. */
  sockopsStorage(fd: number): number;
  /** The CRC32c (Castagnoli) of data, unsigned: what a PP2_TYPE_CRC32C TLV holds. */
  proxyCrc32c(data: Uint8Array): number;
}

export interface NativeBinding {
  savedSynSupported: boolean;
  recordLayout: NativeRecordLayout;
  /** errno, 0 on success */
  setSaveSyn(fd: number, on: boolean): number;
  /** 1 | 0, or -errno */
  getSaveSyn(fd: number): number;
  /**
   * A reader bound to one kind table, one record, withPeerName and, for a server with one, its
   * tap, checked now: reader(fd) reads the saved SYN, asks the tap, fills the record
   * (addon/record.ts decodes it) and returns the errno of the saved-SYN read.
   */
  makeSynReader(kindTable: Uint8Array, record: Uint8Array, withPeerName: boolean, tap?: NativeTap | null): (fd: number) => number;
  /** fd, or -errno */
  createListener(host: string, port: number, backlog: number, reusePort: boolean, ipv6Only: boolean): number;
  /** boolean, or -errno */
  isTcpListener(fd: number): boolean | number;
  /** Packet taps exist on this platform (Linux). */
  tapSupported: boolean;
  /** ringFrames: frames of each socket's mmap'd receive ring (default 4096); 0 reads with recvmmsg. */
  Tap: new (capacity: number, maxAgeMs: number, receiveBuffer: number, ringFrames?: number) => NativeTap;
  /** errno of opening a packet socket here: EPERM without CAP_NET_RAW. */
  probePacketSocket(): number;
  /**
   * Loads the server's sock_ops program and tries its attachment (once per process); errno 0 when
   * it can run here. It is attached while a tap watches a port; `hold` keeps it attached from now
   * on for a tap that opens once its server listens, so the program sees that listen().
   */
  probeSockops(hold?: boolean): { errno: number; syscall?: string; log?: string };
  /**
   * Parses the PROXY protocol header (v1 or v2) at the start of data. maxSize: an integer >= 16
   * (RangeError otherwise); above 65551 it bounds nothing. data not a Uint8Array: TypeError.
   */
  parseProxyHeader(data: Uint8Array, maxSize: number): NativeProxyHeader;
  /**
   * A reader bound to `record` and `buffer`: reader(fd, maxSize) peeks at what the socket has
   * received (never waiting); a whole header is taken off the socket (its bytes left at the start
   * of `buffer`) and the rest left there. Returns a PROXY_STATUS (ok, notProxy, malformed,
   * tooLarge), -undecided (nothing taken: no bytes yet, an incomplete header, the peer closed), or
   * -broken.
   */
  makeProxyReader(record: Uint8Array, buffer: Uint8Array): (fd: number, maxSize: number) => number;
  /** parseProxyHeader() bound to `record`: parser(data, maxSize) fills it and returns the PROXY_STATUS. */
  makeProxyParser(record: Uint8Array): (data: Uint8Array, maxSize: number) => number;
  proxyRecordLayout: NativeProxyRecordLayout;
  testing: NativeTesting;
}
