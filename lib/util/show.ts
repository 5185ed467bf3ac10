// How a bad argument is named in an error message: enough to recognise it, never a dump. One
// printer for values, one for kinds of value, so every message says it the same way.

const MAX_JSON = 60;

/** `'text'` for strings, `a function`, JSON for arrays and plain objects (cut short), else `String()`. */
export function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object' && value !== null) {
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch {
      json = undefined; // a cycle, a BigInt inside
    }
    if (json === undefined) return Array.isArray(value) ? 'an array' : 'an object';
    return json.length > MAX_JSON ? `${json.slice(0, MAX_JSON - 3)}...` : json;
  }
  return String(value);
}

/** `null`, `an array`, or `typeof value`: for "must be an object, got …". */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
