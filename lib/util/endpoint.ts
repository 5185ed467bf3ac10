// One end of a connection: the shape Node's net module uses, the addon fills, and the public API
// answers with (core/types.ts exports it). A leaf, so the addon's private types use it too.

/** Address family, as Node's `net` module names it. */
export type Family = 'IPv4' | 'IPv6';

/** One end of a TCP connection. */
export interface Endpoint {
  address: string;
  port: number;
  family: Family;
}
