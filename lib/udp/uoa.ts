// DPVS UOA for a dgram socket: see openUoa().
import type * as dgram from 'node:dgram';
import type { CompiledUdp } from './options';
import type { UoaLookup } from './receive';

/** The UOA reader of a socket, or null when `uoa` is off. */
export function openUoa(_socket: dgram.Socket, options: CompiledUdp): UoaLookup | null {
  if (options.uoa === 'off') return null;
  throw new Error('node-toa: uoa is not available yet');
}
