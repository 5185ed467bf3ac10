// Which TOA-shaped option of a packet is believed, for one resolver's kinds and `multiple`.
// The parser lists the options in order (native/toa_parse.h); this is the rule of
// docs/formats.md, "Which option decides":
// - the first option of a configured kind with a TOA length decides; when it names no client (a
//   TCP Fast Open cookie in a SYN, 0.0.0.0 or ::) the packet has no TOA: a later option never
//   wins, because LVS and DPVS put the proxy's option first and what follows may be the client's;
// - two or more are ambiguous (some proxies put theirs last), and by default none is believed;
// - a TCP Fast Open cookie (SYNs only) is no address: first, it decides; later, it is passed over.
import { OPTION_STATUS, type NativeToa } from '../addon/native';
import { accepts } from './kinds';
import type { RefusedReason } from './types';

/** What to do with a packet holding more than one TOA-shaped option. */
export type Multiple = 'ignore' | 'first' | 'last';

export const MULTIPLE_VALUES: readonly Multiple[] = Object.freeze(['ignore', 'first', 'last']);

/** What a trusted proxy's packet can be refused for (the rest of RefusedReason is `untrusted`). */
type TrustedRefusal = Exclude<RefusedReason, 'untrusted'>;

/** A packet whose options were refused: allocated only then (a forgery or a broken proxy). */
export interface RefusedPacket {
  readonly reason: TrustedRefusal;
  /** The option that decided (the first, or the last with `multiple: 'last'`). */
  readonly option: NativeToa;
  /** Addresses among the packet's TOA-shaped options of this resolver's kinds. */
  readonly count: number;
}

const STATUS_REFUSAL: Record<number, TrustedRefusal> = {
  [OPTION_STATUS.tfoCookie]: 'tfoCookie',
  [OPTION_STATUS.unspecified]: 'malformed',
  [OPTION_STATUS.badVersion]: 'malformed',
};

/**
 * The believed option (its `status` is usable), a refusal, or undefined when the packet has no
 * option of the table's kinds.
 */
export function selectToa(
  options: readonly NativeToa[] | undefined,
  table: Uint8Array,
  multiple: Multiple,
): NativeToa | RefusedPacket | undefined {
  if (options === undefined || options.length === 0) return undefined;
  let first: NativeToa | undefined;
  let last: NativeToa | undefined;
  let count = 0; // addresses among them: a TCP Fast Open cookie is none
  for (const o of options) {
    if (!accepts(table, o)) continue;
    if (first === undefined) first = o;
    // A TFO cookie in a SYN decides when it comes first (a proxy that puts its option first would
    // have put it before); anywhere else it is passed over, and makes no packet ambiguous.
    if (o.status === OPTION_STATUS.tfoCookie) continue;
    count++;
    last = o;
  }
  if (first === undefined) return undefined;
  if (count > 1 && multiple === 'ignore') return { reason: 'ambiguous', option: first, count };
  const chosen = multiple === 'last' && last !== undefined ? last : first;
  if (chosen.status === OPTION_STATUS.usable) return chosen;
  return { reason: STATUS_REFUSAL[chosen.status] ?? 'malformed', option: chosen, count };
}

export function isRefused(s: NativeToa | RefusedPacket): s is RefusedPacket {
  return (s as RefusedPacket).reason !== undefined;
}
