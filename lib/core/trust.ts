// Compiles `trustProxy` once into a predicate. CIDR matching is proxy-addr's, the code behind
// Express's and Fastify's `trust proxy`, so the syntax means the same here as there.
import proxyAddr = require('proxy-addr');
import { show } from '../util/show';
import type { TrustProxy } from './types';

export type TrustFn = (address: string) => boolean;

const trustAll: TrustFn = () => true;
/** The trust of `trustProxy: false` (and of no trustProxy at all): no one. */
export const trustNone: TrustFn = () => false;

export function compileTrust(value: TrustProxy | undefined): TrustFn {
  if (value === undefined || value === false) return trustNone;
  if (value === true) return trustAll;
  if (typeof value === 'function') {
    return (address) => value(address) === true;
  }
  let list: string[];
  if (typeof value === 'string') {
    list = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  } else if (Array.isArray(value)) {
    list = [];
    for (const entry of value as unknown[]) {
      if (typeof entry !== 'string') {
        throw new TypeError(
          `trustProxy: every entry must be a string (an IP, a CIDR or a keyword), got ${show(entry)}`,
        );
      }
      list.push(entry.trim());
    }
  } else {
    throw new TypeError(
      `trustProxy must be a boolean, a string, an array of strings or a function, got ${show(value)}`,
    );
  }
  if (list.length === 0) return trustNone;
  let match: (address: string, hop: number) => boolean;
  try {
    match = proxyAddr.compile(list);
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
