// Go encoding/json decodes object keys into struct fields case-insensitively, and when a key appears
// more than once (in any case) the last one in document order wins. JSON.parse keeps insertion
// order for non-numeric keys, so a scan over Object.keys() reproduces that.

/** The value of field `name` as Go's decoder would pick it, or undefined if absent. */
export function goField(obj: Record<string, unknown>, name: string): unknown {
  const want = name.toLowerCase();
  let found: unknown = undefined;
  for (const k of Object.keys(obj)) {
    if (k.toLowerCase() === want) found = obj[k];
  }
  return found;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function goTypeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return 'object';
  return typeof v;
}

/** Go's UnmarshalTypeError text: `json: cannot unmarshal string into Go struct field Config.SubnetLen of type uint`. */
export function unmarshalTypeError(v: unknown, struct: string, field: string, goType: string): TypeError {
  return new TypeError(`json: cannot unmarshal ${goTypeOf(v)} into Go struct field ${struct}.${field} of type ${goType}`);
}

export function goBool(obj: Record<string, unknown>, struct: string, field: string, dflt: boolean): boolean {
  const v = goField(obj, field);
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw unmarshalTypeError(v, struct, field, 'bool');
  return v;
}

export function goUint(obj: Record<string, unknown>, struct: string, field: string): number {
  const v = goField(obj, field);
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw unmarshalTypeError(v, struct, field, 'uint');
  return v;
}

export function goString(obj: Record<string, unknown>, struct: string, field: string): string | undefined {
  const v = goField(obj, field);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw unmarshalTypeError(v, struct, field, 'string');
  return v;
}

/**
 * Go's json.Marshal of a string: like JSON.stringify, plus the HTML-safe escapes Go always applies
 * (<, >, & as \u003c, \u003e, \u0026) and U+2028/U+2029.
 */
export function goQuote(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Go's json.Marshal of a decoded JSON value (compact, keys in the order given, Go string escapes). */
export function goMarshal(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return goQuote(v);
  if (typeof v === 'number' || typeof v === 'boolean') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(goMarshal).join(',')}]`;
  if (typeof v === 'object') {
    const parts = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `${goQuote(k)}:${goMarshal(x)}`);
    return `{${parts.join(',')}}`;
  }
  throw new TypeError(`cannot marshal ${typeof v} as JSON`);
}
