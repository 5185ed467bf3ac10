// Counters of what the resolvers refused, for stats(). Incremented on the refusal path only, which
// a forgery or a broken proxy takes, never a good connection.
import type { Refusal } from './select';

/** Per reason: packets from trusted proxies whose TOA-shaped options were not believed. */
export const refused: Record<Refusal, number> = {
  ambiguous: 0,
  'tfo-cookie': 0,
  unspecified: 0,
  'bad-version': 0,
};
