// The raw addon's UDP part (native/udp_addon.cc), added to NativeBinding and NativeTesting by
// declaration merging: private like native.ts, kept apart so that the UDP glue and its types live
// together. Every member is optional: an addon built before them has none.
import type { Endpoint } from '../util/endpoint';

/** Offsets of the byte record a makeDgramParser() parser fills (native/udp_addon.cc `layout`). */
export interface NativeDgramRecordLayout {
  size: number;
  /** the DgramKind byte (native/dgram_header.h) */
  kind: number;
  /** index into `reasons` */
  reason: number;
  clientV6: number;
  otherV6: number;
  /** u32 big-endian: the header's bytes */
  length: number;
  /** 16 address bytes (IPv4 in the first 4), then the port big-endian */
  client: number;
  other: number;
  formatSpp: number;
  formatProxy: number;
  reasons: string[];
}

/** DPVS UOA tap counters (native/uoa_tap.h). */
export interface NativeUoaTapStats {
  packets: number;
  found: number;
  /** protocol-248 packets: they reach no UDP socket without uoa.ko */
  privateProtocol: number;
  malformed: number;
  evictions: number;
  drops: number;
  tableSize: number;
}

/** One UOA tap: a packet socket for one UDP port (0: any) and the table of what options said. */
export interface NativeUoaTap {
  open(port: number, receiveBuffer: number): { errno: number; syscall?: string };
  /** The client the newest UOA from this proxy end named, since the last call (consumed); null otherwise. */
  fresh(address: string, port: number): Endpoint | null;
  drain(): void;
  stats(): NativeUoaTapStats;
  close(): void;
}

/** What testing.parseUoaPacket() found in an IP packet (native/uoa_parse.h). */
export interface NativeUoaPacket {
  status: 'notUdp' | 'none' | 'found' | 'private' | 'malformed';
  source?: Endpoint;
  destination?: Endpoint;
  client?: Endpoint;
  payloadLength?: number;
}

declare module './native' {
  interface NativeBinding {
    /**
     * The UDP header parser (SPP, PROXY v2) bound to `record`: parser(data, formats, maxSize) fills
     * it and returns the DgramKind.
     */
    makeDgramParser(record: Uint8Array): (data: Uint8Array, formats: number, maxSize: number) => number;
    dgramRecordLayout: NativeDgramRecordLayout;
    /** UOA packet taps exist on this platform (Linux). */
    uoaTapSupported: boolean;
    UoaTap: new (capacity: number, maxAgeMs: number) => NativeUoaTap;
    /** DPVS uoa.ko's UOA_SO_GET_LOOKUP on a UDP socket: the client, null (no mapping), or -errno. */
    uoaModuleLookup(fd: number, address: string, port: number, localPort: number): Endpoint | null | number;
  }

  interface NativeTesting {
    /** The UOA packet parser alone. */
    parseUoaPacket(packet: Uint8Array): NativeUoaPacket;
  }
}
