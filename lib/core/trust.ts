// Compiles `trustProxy` once into a predicate. CIDR matching is proxy-addr's, the code behind
// Express's and Fastify's `trust proxy`, so the syntax means the same here as there.
import proxyAddr = require('proxy-addr');
import { show } from '../util/show';
import type { TrustProxy } from './types';

export type TrustFn = (address: string) => boolean;

const trustAll: TrustFn = () => true;
/** The trust of `trustProxy: false` (and of no trustProxy at all): no one. */
export const trustNone: TrustFn = () => false;

/**
 * The entries of a `trustProxy` list (IPs, CIDR ranges, keywords), as written; `'everyone'` for
 * `true`, `'function'` for a function. The tap's filter (tap/sources.ts) reads the same entries.
 */
export function trustEntries(value: TrustProxy | undefined): readonly string[] | 'everyone' | 'function' {
  if (value === undefined || value === false) return [];
  if (value === true) return 'everyone';
  if (typeof value === 'function') return 'function';
  if (typeof value === 'string') return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (Array.isArray(value)) {
    const list: string[] = [];
    for (const entry of value as unknown[]) {
      if (typeof entry !== 'string') {
        throw new TypeError(
          `trustProxy: every entry must be a string (an IP, a CIDR or a keyword), got ${show(entry)}`,
        );
      }
      list.push(entry.trim());
    }
    return list;
  }
  throw new TypeError(
    `trustProxy must be a boolean, a string, an array of strings or a function, got ${show(value)}`,
  );
}

export function compileTrust(value: TrustProxy | undefined): TrustFn {
  const list = trustEntries(value);
  if (list === 'everyone') return trustAll;
  if (list === 'function') {
    const fn = value as (address: string) => boolean;
    return (address) => fn(address) === true;
  }
  if (list.length === 0) return trustNone;
  let match: (address: string, hop: number) => boolean;
  try {
    match = proxyAddr.compile(list as string[]);
  } catch (error) {
    throw new TypeError(`trustProxy: ${(error as Error).message} (in ${show(value)})`);
  }
  return memoize((address) => match(address, 0));
}

// proxy-addr parses the address on every call (1-4 µs); the peers asking are a handful of
// proxies, so remember answers. Bounded: a flood of distinct sources only refills the map.
const MEMO_LIMIT = 4096;

function memoize(match: TrustFn): TrustFn {
  const known = new Map<string, boolean>();
  return (address) => {
    let trusted = known.get(address);
    if (trusted === undefined) {
      trusted = match(address);
      if (known.size >= MEMO_LIMIT) known.clear();
      known.set(address, trusted);
    }
    return trusted;
  };
}
