// How a bad option value is named in an error message: enough to recognise it, never a dump.

/** `'text'` for strings, `an array`, `an object`, `a function`, `null`, else `String(value)`. */
export function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return 'an object';
  return String(value);
}
