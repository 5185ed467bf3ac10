// The `proxyProtocol` option of enable(), listen(), install() and the Fastify plugin: validated
// once, where the user passed it, into what the per-connection gate reads.
import { checkOptionKeys, integerOption } from '../core/options';
import { show } from '../util/show';

export interface CompiledProxyProtocol {
  /** A trusted peer's connection without a header is closed (else passed on as it is). */
  readonly required: boolean;
  readonly timeoutMs: number;
  readonly maxHeaderSize: number;
}

export const DEFAULT_TIMEOUT_MS = 5000;
export const MIN_TIMEOUT_MS = 1;
export const MAX_TIMEOUT_MS = 600000;
export const DEFAULT_MAX_HEADER_SIZE = 4096;
// The smallest: v2's fixed 16 bytes (a LOCAL header without addresses). A bound below 232 (v2 with
// two AF_UNIX paths) or 107 (the longest v1 line) is the user's to choose: longer headers are then
// refused as too large. The largest: the v2 length field is 16 bits.
export const MIN_MAX_HEADER_SIZE = 16;
export const MAX_MAX_HEADER_SIZE = 16 + 65535;

const KEYS: readonly string[] = ['mode', 'timeout', 'maxHeaderSize'];

const REQUIRED: CompiledProxyProtocol = Object.freeze({
  required: true,
  timeoutMs: DEFAULT_TIMEOUT_MS,
  maxHeaderSize: DEFAULT_MAX_HEADER_SIZE,
});
const OPTIONAL: CompiledProxyProtocol = Object.freeze({ ...REQUIRED, required: false });

/** Validates `proxyProtocol`; null when no header is read (the default). */
export function compileProxyProtocol(value: unknown, where: string): CompiledProxyProtocol | null {
  if (value === undefined || value === false) return null;
  if (value === true || value === 'required') return REQUIRED;
  if (value === 'optional') return OPTIONAL;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(
      `${where}: options.proxyProtocol must be true, false, 'required', 'optional' or an object such as ` +
        `{ mode: 'required', timeout: 5000, maxHeaderSize: 4096 }, got ${show(value)}`,
    );
  }
  checkOptionKeys(value, KEYS, where, 'proxyProtocol.');
  const o = value as Record<string, unknown>;
  if (o.mode !== undefined && o.mode !== 'required' && o.mode !== 'optional') {
    throw new TypeError(`${where}: options.proxyProtocol.mode must be 'required' or 'optional', got ${show(o.mode)}`);
  }
  return Object.freeze({
    required: o.mode !== 'optional',
    timeoutMs:
      o.timeout === undefined ? DEFAULT_TIMEOUT_MS : integerOption(o.timeout, 'proxyProtocol.timeout', MIN_TIMEOUT_MS, MAX_TIMEOUT_MS, where),
    maxHeaderSize:
      o.maxHeaderSize === undefined
        ? DEFAULT_MAX_HEADER_SIZE
        : integerOption(o.maxHeaderSize, 'proxyProtocol.maxHeaderSize', MIN_MAX_HEADER_SIZE, MAX_MAX_HEADER_SIZE, where),
  });
}
