// The options of enable(socket, options) for a dgram.Socket, validated once where the user passed
// them (TypeError/RangeError naming the option and the value), into what each datagram reads.
import { checkOptionKeys, integerOption } from '../core/options';
import { compileTrust, type TrustFn } from '../core/trust';
import type { TrustProxy } from '../core/types';
import { show } from '../util/show';
import { FORMAT_PROXY, FORMAT_SPP } from './header';

/** `flows`: how many flows are remembered, and for how long without a datagram. */
export interface UdpFlowOptions {
  /** Flows (proxy address and port) remembered at once; the least recently seen goes first. Default 65536. */
  capacity?: number;
  /** Milliseconds a flow is remembered after its last datagram. Default 300000 (5 minutes). */
  maxAge?: number;
}

/** Options of `enable(socket, options)` for a `dgram.Socket`. */
export interface UdpOptions {
  /**
   * The proxies whose datagrams are read (the syntax of Express's `trust proxy`). Default: the
   * trust of `configure()` / `install()` at each datagram. From anyone else the bytes reach the
   * application as they are.
   */
  trustProxy?: TrustProxy;
  /**
   * Cloudflare Spectrum's / Tencent EdgeOne's Simple Proxy Protocol: a 38-byte header on every
   * datagram, echoed on replies. `true`: a trusted proxy's datagram on an unknown flow without a
   * header is dropped; `'optional'`: delivered as the proxy's own. Default `false`.
   */
  spp?: boolean | 'optional';
  /** PROXY protocol v2 over UDP (transport 0x12/0x22), on the first datagram of a flow or on every one. Default `false`. */
  proxyProtocol?: boolean | 'optional';
  /**
   * DPVS UOA: the client in an IPv4 option (0x1F) of a flow's first datagrams, read by a packet tap
   * (needs CAP_NET_RAW) or from DPVS's uoa.ko. `true` opens the tap (throws without CAP_NET_RAW) and
   * drops a trusted datagram on an unknown flow without one; `'auto'` opens it when it can, else
   * reads only uoa.ko, and delivers such a datagram as the proxy's own. Default `false`.
   */
  uoa?: boolean | 'auto';
  /** Bounds of the flow table. */
  flows?: UdpFlowOptions;
}

export type UoaMode = 'off' | 'on' | 'auto';

export interface CompiledUdp {
  /** undefined: the default resolver's trust, asked at each datagram. */
  readonly trust: TrustFn | undefined;
  /** FORMAT_SPP | FORMAT_PROXY bits */
  readonly formats: number;
  readonly spp: boolean;
  readonly uoa: UoaMode;
  /** A trusted datagram on an unknown flow without a header is dropped (else delivered as the peer's). */
  readonly required: boolean;
  readonly capacity: number;
  readonly maxAgeMs: number;
  readonly maxHeaderSize: number;
}

export const UDP_KEYS: readonly string[] = ['trustProxy', 'spp', 'proxyProtocol', 'uoa', 'flows'];
const FLOW_KEYS: readonly string[] = ['capacity', 'maxAge'];
export const DEFAULT_FLOW_CAPACITY = 65536;
export const MAX_FLOW_CAPACITY = 1 << 24;
export const DEFAULT_FLOW_MAX_AGE_MS = 300000;
export const MIN_FLOW_MAX_AGE_MS = 100;
export const MAX_FLOW_MAX_AGE_MS = 86400000;
// A v2 header with TLVs fits well within this; a datagram cannot exceed 65535 bytes anyway.
const MAX_HEADER_SIZE = 4096;

type Mode = 0 | 1 | 2; // off, optional, required

function headerMode(value: unknown, name: string, where: string): Mode {
  if (value === undefined || value === false) return 0;
  if (value === true) return 2;
  if (value === 'optional') return 1;
  throw new TypeError(`${where}: options.${name} must be true, false or 'optional', got ${show(value)}`);
}

function uoaMode(value: unknown, where: string): UoaMode {
  if (value === undefined || value === false) return 'off';
  if (value === true) return 'on';
  if (value === 'auto') return 'auto';
  throw new TypeError(`${where}: options.uoa must be true, false or 'auto', got ${show(value)}`);
}

/** Validates the options of a dgram socket; throws where one is bad or none reads a header. */
export function compileUdp(options: UdpOptions | undefined, where: string): CompiledUdp {
  checkOptionKeys(options, UDP_KEYS, where);
  const spp = headerMode(options?.spp, 'spp', where);
  const pp = headerMode(options?.proxyProtocol, 'proxyProtocol', where);
  const uoa = uoaMode(options?.uoa, where);
  if (spp === 0 && pp === 0 && uoa === 'off') {
    throw new TypeError(
      `${where}: a dgram socket needs spp, proxyProtocol or uoa (which header its proxy sends), got ${show(options ?? {})}`,
    );
  }
  const flows = options?.flows;
  if (flows !== undefined && (typeof flows !== 'object' || flows === null || Array.isArray(flows))) {
    throw new TypeError(`${where}: options.flows must be an object such as { capacity: 65536, maxAge: 300000 }, got ${show(flows)}`);
  }
  checkOptionKeys(flows, FLOW_KEYS, where, 'flows.');
  const f = (flows ?? {}) as Record<string, unknown>;
  return Object.freeze({
    trust: options?.trustProxy === undefined ? undefined : compileTrust(options.trustProxy),
    formats: (spp !== 0 ? FORMAT_SPP : 0) | (pp !== 0 ? FORMAT_PROXY : 0),
    spp: spp !== 0,
    uoa,
    required: spp === 2 || pp === 2 || uoa === 'on',
    capacity: f.capacity === undefined ? DEFAULT_FLOW_CAPACITY : integerOption(f.capacity, 'flows.capacity', 1, MAX_FLOW_CAPACITY, where),
    maxAgeMs:
      f.maxAge === undefined
        ? DEFAULT_FLOW_MAX_AGE_MS
        : integerOption(f.maxAge, 'flows.maxAge', MIN_FLOW_MAX_AGE_MS, MAX_FLOW_MAX_AGE_MS, where),
    maxHeaderSize: MAX_HEADER_SIZE,
  });
}
