// Validates options once, where the user passed them, and compiles them into what the
// per-connection path reads. Errors name the option and the bad value.
import { compileKinds } from './kinds';
import { compileTrust, type TrustFn } from './trust';
import type { ToaOptions } from './types';

export interface CompiledOptions {
  readonly trust: TrustFn;
  readonly kindTable: Uint8Array;
}

const CORE_KEYS: readonly string[] = ['trustProxy', 'kinds'];

/** Throws a TypeError for a non-object or for a key not in `allowed` (a typo must not pass). */
export function checkOptionKeys(options: unknown, allowed: readonly string[], where: string): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${where}: options must be an object, got ${options === null ? 'null' : typeof options}`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`${where}: unknown option '${key}' (known: ${allowed.join(', ')})`);
    }
  }
}

export function compileOptions(
  options: ToaOptions | undefined,
  where: string,
  extraKeys: readonly string[] = [],
): CompiledOptions {
  checkOptionKeys(options, extraKeys.length === 0 ? CORE_KEYS : [...CORE_KEYS, ...extraKeys], where);
  return {
    trust: compileTrust(options?.trustProxy),
    kindTable: compileKinds(options?.kinds),
  };
}
