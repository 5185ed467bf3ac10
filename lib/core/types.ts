/** Address family, as Node's `net` module names it. */
export type Family = 'IPv4' | 'IPv6';

/** One end of a TCP connection. */
export interface Endpoint {
  address: string;
  port: number;
  family: Family;
}

/**
 * The client of a connection, as node-toa determined it.
 * - `toa`: read from a TCP option address (TOA) sent by a trusted proxy; `proxy` is that proxy.
 * - `kernel`: a vendor TOA kernel module already rewrote `getpeername`, and the L3 peer (`proxy`)
 *   is trusted.
 * - `peer`: no usable TOA; `address`/`port` are the L3 peer's.
 */
export interface RealAddress extends Endpoint {
  source: 'toa' | 'kernel' | 'peer';
  /** The L3 peer (the proxy) when `source` is `'toa'` or `'kernel'`. */
  proxy?: Endpoint;
  /** The TCP option kind the address was read from, when `source` is `'toa'`. */
  kind?: number;
  /** Which packet carried the option, when `source` is `'toa'`: the SYN, the handshake ACK, or the first data packet. */
  packet?: 'syn' | 'ack' | 'data';
  /**
   * The address the client connected to, when the proxy said (Alibaba SLB VTOA, kind 252: the
   * VIP and its port).
   */
  destination?: Endpoint;
}

/**
 * Who may tell us the client's address. The syntax of Express's and Fastify's `trust proxy`:
 * `true` (everyone), `false` (no one), a comma-separated string or an array of IP addresses,
 * CIDR ranges and the keywords `loopback`, `linklocal`, `uniquelocal`, or a function.
 */
export type TrustProxy = boolean | string | readonly string[] | ((address: string) => boolean);

/** How the body of a TCP option is laid out (see the README's table of formats). */
export type ToaLayout = 'ipv4' | 'ipv6' | 'ali-cdn' | 'vtoa';

/** A TCP option kind to read: a number takes that kind's known layouts, or name the layout. */
export type KindSpec = number | { kind: number; layout: ToaLayout };

export interface ToaOptions {
  /** Peers whose TOA is believed. Default `false`: every TOA is ignored. */
  trustProxy?: TrustProxy;
  /** TCP option kinds read as TOA. Default `[200, 253, 254]`; 28 and 252 are opt-in. */
  kinds?: readonly KindSpec[];
  /**
   * A packet with more than one TOA-shaped option (of the configured kinds): `'ignore'` (default)
   * believes none of them, `'first'` the first, `'last'` the last. Proxies differ (LVS and DPVS
   * put theirs first; Huawei's IPv6 ELB module and Tencent's vtoa read the last); legitimate
   * traffic carries exactly one.
   */
  multiple?: 'ignore' | 'first' | 'last';
}
