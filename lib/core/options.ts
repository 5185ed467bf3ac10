// Validates options once, where the user passed them, and compiles them into what the
// per-connection path reads. Errors name the option and the bad value.
import { show, typeName } from '../util/show';
import { compileKinds, registerKindTable } from './kinds';
import { MULTIPLE_VALUES, type Multiple } from './select';
import { compileTrust, type TrustFn } from './trust';
import type { ToaOptions } from './types';

export interface CompiledOptions {
  readonly trust: TrustFn;
  readonly kindTable: Uint8Array;
  readonly multiple: Multiple;
}

/** The keys of ToaOptions: every integration accepts them beside its own. */
export const CORE_KEYS: readonly string[] = Object.freeze(['trustProxy', 'kinds', 'multiple']);

function compileMultiple(value: unknown): Multiple {
  if (value === undefined) return 'ignore';
  if (typeof value === 'string' && (MULTIPLE_VALUES as readonly string[]).includes(value)) return value as Multiple;
  throw new TypeError(`multiple must be one of ${MULTIPLE_VALUES.map((v) => `'${v}'`).join(', ')}, got ${show(value)}`);
}

/**
 * Throws a TypeError for a non-object or for a key not in `allowed` (a typo must not pass).
 * `prefix` names a nested object in the message (`'ack.'`).
 */
/** `options.<path>` as an integer from `min` to `max`: TypeError, else RangeError, naming both. */
export function integerOption(value: unknown, path: string, min: number, max: number, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${where}: options.${path} must be an integer, got ${show(value)}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${where}: options.${path} must be from ${min} to ${max}, got ${value}`);
  }
  return value;
}

export function checkOptionKeys(options: unknown, allowed: readonly string[], where: string, prefix = ''): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${where}: options must be an object, got ${typeName(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`${where}: unknown option '${prefix}${key}' (known: ${allowed.join(', ')})`);
    }
  }
}

export function compileOptions(
  options: ToaOptions | undefined,
  where: string,
  extraKeys: readonly string[] = [],
): CompiledOptions {
  checkOptionKeys(options, extraKeys.length === 0 ? CORE_KEYS : [...CORE_KEYS, ...extraKeys], where);
  const compiled = {
    trust: compileTrust(options?.trustProxy),
    kindTable: compileKinds(options?.kinds),
    multiple: compileMultiple(options?.multiple),
  };
  registerKindTable(compiled.kindTable);
  return compiled;
}
