import type { Endpoint } from '../util/endpoint';

export type { Endpoint, Family } from '../util/endpoint';

/**
 * The client of a connection, as node-toa determined it.
 * - `toa`: read from a TCP option address (TOA) sent by a trusted proxy; `proxy` is that proxy.
 * - `kernel`: a vendor TOA kernel module already rewrote `getpeername`, and the L3 peer (`proxy`)
 *   is trusted.
 * - `proxy-protocol`: read from a PROXY protocol v1/v2 header a trusted proxy sent before the
 *   connection's data (`proxyProtocol` option of enable/listen/install); `proxy` is that proxy.
 * - `peer`: no usable TOA; `address`/`port` are the L3 peer's.
 */
export interface RealAddress extends Endpoint {
  source: 'toa' | 'kernel' | 'proxy-protocol' | 'peer';
  /** The L3 peer (the proxy) when `source` is `'toa'`, `'kernel'` or `'proxy-protocol'`. */
  proxy?: Endpoint;
  /** The TCP option kind the address was read from, when `source` is `'toa'`. */
  kind?: number;
  /** Which packet carried the option, when `source` is `'toa'`: the SYN, the handshake ACK, or the first data packet. */
  packet?: 'syn' | 'ack' | 'data';
  /**
   * The address the client connected to, when the proxy said (Alibaba SLB VTOA, kind 252: the
   * VIP and its port; a PROXY protocol header's destination).
   */
  destination?: Endpoint;
  /**
   * The PROXY protocol header a trusted proxy sent on this connection: with `source:
   * 'proxy-protocol'`, or with `source: 'peer'` for a LOCAL header (a health check) or one that
   * names no address (v1 UNKNOWN, v2 UNSPEC or AF_UNIX).
   */
  proxyProtocol?: ProxyProtocolInfo;
}

/**
 * Why a TOA was not believed: its sender is not a trusted proxy (`untrusted`), or a trusted
 * proxy's options gave no client: several of them (`ambiguous`), a TCP Fast Open cookie first in
 * a SYN (`tfoCookie`: the client's own option, no fault of anyone's), or an option that names no
 * client (`malformed`: 0.0.0.0, ::, a bad version byte).
 */
export type RefusedReason = 'untrusted' | 'ambiguous' | 'tfoCookie' | 'malformed';

/** One TLV of a PROXY protocol v2 header, its value copied out of the connection's bytes. */
export interface ProxyTlv {
  type: number;
  value: Buffer;
}

/** PP2_TYPE_SSL (0x20): how the client reached the proxy over TLS. */
export interface ProxySsl {
  /** The `client` bit field: 0x01 TLS, 0x02 a certificate on this connection, 0x04 on the session. */
  client: number;
  /** The `verify` field: 0 when the client's certificate was verified. */
  verify: number;
  /** The client presented a certificate (bit 0x02 or 0x04) and it was verified (`verify` 0). */
  verified: boolean;
  /** PP2_SUBTYPE_SSL_VERSION (0x21), e.g. `'TLSv1.3'`. */
  version?: string;
  /** PP2_SUBTYPE_SSL_CN (0x22): the client certificate's Common Name. */
  cn?: string;
  /** PP2_SUBTYPE_SSL_CIPHER (0x23), e.g. `'TLS_AES_256_GCM_SHA384'`. */
  cipher?: string;
  /** PP2_SUBTYPE_SSL_SIG_ALG (0x24): the certificate's signature algorithm. */
  sigAlg?: string;
  /** PP2_SUBTYPE_SSL_KEY_ALG (0x25): the certificate's key algorithm. */
  keyAlg?: string;
  /** Every sub-TLV, raw. */
  tlvs: ProxyTlv[];
}

/** What a PROXY protocol header said beside the addresses. */
export interface ProxyProtocolInfo {
  version: 1 | 2;
  /** `LOCAL`: the proxy's own connection (a health check); its addresses are not a client's. */
  command: 'PROXY' | 'LOCAL';
  /** Every TLV (v2), in order; empty for v1. */
  tlvs: ProxyTlv[];
  /** A PP2_TYPE_CRC32C TLV was present (and matched: a wrong one closes the connection). */
  crc32c: boolean;
  /** PP2_TYPE_ALPN (0x01): the protocol the client negotiated with the proxy, e.g. `'h2'`. */
  alpn?: string;
  /** PP2_TYPE_AUTHORITY (0x02): the host name the client asked for (TLS SNI). */
  authority?: string;
  /** PP2_TYPE_UNIQUE_ID (0x05): the proxy's id of the connection (opaque, up to 128 bytes). */
  uniqueId?: Buffer;
  /** PP2_TYPE_SSL (0x20). */
  ssl?: ProxySsl;
  /** PP2_TYPE_NETNS (0x30): the proxy's network namespace name. */
  netns?: string;
  /** AWS (0xEA, subtype 0x01): the VPC endpoint id of a PrivateLink connection, e.g. `'vpce-0123…'`. */
  vpceId?: string;
  /** Azure (0xEE, subtype 0x01): the Private Endpoint LINKID (u32, little-endian on the wire). */
  linkId?: number;
  /** Google Cloud (0xE0): the Private Service Connect connection id (u64, as a decimal string). */
  pscConnectionId?: string;
  /** Alibaba Cloud PrivateLink through NLB (0xE1, one TLV per subtype 0x01, 0x02, 0x03). */
  alibaba?: { vpcId?: string; endpointId?: string; endpointServiceId?: string };
}

/**
 * The `proxyProtocol` option: `false` (default, no header read), `true` or `'required'` (every
 * connection from a trusted proxy starts with a header; one without is closed), `'optional'` (a
 * trusted proxy may send one), or the mode with its bounds.
 */
export type ProxyProtocolOption =
  | boolean
  | 'required'
  | 'optional'
  | {
      mode?: 'required' | 'optional';
      /** Milliseconds from accept for the whole header to arrive. Default 5000 (1 to 600000). */
      timeout?: number;
      /** The largest header accepted, in bytes. Default 4096 (16 to 65551). */
      maxHeaderSize?: number;
    };

/**
 * Who may tell us the client's address. The syntax of Express's and Fastify's `trust proxy`:
 * `true` (everyone), `false` (no one), a comma-separated string or an array of IP addresses,
 * CIDR ranges and the keywords `loopback`, `linklocal`, `uniquelocal`, or a function.
 */
export type TrustProxy = boolean | string | readonly string[] | ((address: string) => boolean);

/** How the body of a TCP option is laid out (docs/formats.md has the table). */
export type ToaLayout = 'ipv4' | 'ipv6' | 'ali-cdn' | 'vtoa' | 'ali-ddos';

/** A TCP option kind to read: a number takes that kind's known layouts, or name the layout. */
export type KindSpec = number | { kind: number; layout: ToaLayout };

export interface ToaOptions {
  /** Peers whose TOA is believed. Default `false`: every TOA is ignored. */
  trustProxy?: TrustProxy;
  /** TCP option kinds read as TOA. Default `[200, 249, 253, 254]`; 28 and 252 are opt-in. */
  kinds?: readonly KindSpec[];
  /**
   * A packet with more than one TOA-shaped option (of the configured kinds): `'ignore'` (default)
   * believes none of them, `'first'` the first, `'last'` the last. Proxies differ (LVS and DPVS
   * put theirs first; Huawei's IPv6 ELB module and Tencent's vtoa read the last); legitimate
   * traffic carries exactly one.
   */
  multiple?: 'ignore' | 'first' | 'last';
}
