// The parser's binding as agreed with the native side (native/proxy_parse.*), until lib/addon/native.ts
// carries it: binding.parseProxyHeader(data, maxSize).
import type { NativeEndpoint } from '../addon/native';

export const PROXY_STATUS = Object.freeze({ ok: 0, incomplete: 1, notProxy: 2, malformed: 3, tooLarge: 4 });

export interface NativeProxyHeader {
  status: number;
  /** ok: the header's bytes; incomplete: the total needed when known, else 0. */
  length: number;
  /** Why, for malformed and tooLarge. */
  reason: string;
  /** 1 or 2; 0 when not known. */
  version: number;
  command: 'PROXY' | 'LOCAL';
  family: 'IPv4' | 'IPv6' | 'unix' | 'unspec';
  transport: 'stream' | 'dgram' | 'unspec';
  source?: NativeEndpoint;
  destination?: NativeEndpoint;
  /** Triples [type, offset, length] into the parsed buffer. */
  tlvs: number[];
  /** PP2_TYPE_SSL: its fields, and its sub-TLVs as triples into the buffer. */
  ssl?: { client: number; verify: number; tlvs: number[] };
  crc32c: boolean;
}

export type ParseProxyHeader = (data: Uint8Array, maxSize: number) => NativeProxyHeader;
