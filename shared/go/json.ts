// JSON the way Go's encoding/json reads it into a struct, for drop-in config compatibility (the one
// decoder of the daemon, the plugins and the runner):
// - object keys match field names case-insensitively (the last matching key in document order wins;
//   JSON.parse keeps insertion order for non-numeric keys), unknown keys are ignored, `null` leaves the
//   field at its zero value;
// - a value of the wrong JSON type is an error worded like Go's UnmarshalTypeError;
// - output is marshalled like json.MarshalIndent / json.Marshal, including Go's HTML escaping.
export type JsonObject = Record<string, unknown>;

/** A decoding error worded as Go's. A TypeError, so callers that catch either kind keep working. */
export class GoJsonError extends TypeError {
  override readonly name = 'GoJsonError';
}

/** Parses bytes as JSON; errors are worded like Go's (`unexpected end of JSON input`, `invalid character ...`). */
export function parseJson(data: string | Buffer): unknown {
  const text = typeof data === 'string' ? data : data.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new GoJsonError(goSyntaxMessage(text));
  }
}

function goSyntaxMessage(text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') return 'unexpected end of JSON input';
  // Find the first offending character with a tiny scan: good enough to name it like Go does.
  const first = trimmed[0] ?? '';
  if (!'{["-0123456789tfn'.includes(first)) return `invalid character ${quoteChar(first)} looking for beginning of value`;
  const opens = (trimmed.match(/[{[]/g) ?? []).length;
  const closes = (trimmed.match(/[}\]]/g) ?? []).length;
  if (opens > closes) return 'unexpected end of JSON input';
  return `invalid character in JSON input`;
}

function quoteChar(c: string): string {
  if (c === "'") return `'\\''`;
  return `'${c}'`;
}

export function jsonTypeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'string') return 'string';
  return 'object';
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Case-insensitive field lookup with Go's last-match-wins rule; `null` reads as absent. */
export function field(obj: JsonObject, name: string): unknown {
  const lower = name.toLowerCase();
  let found: unknown;
  for (const key of Object.keys(obj)) {
    if (key === name || key.toLowerCase() === lower) found = obj[key];
  }
  return found === null ? undefined : found;
}

/** Names the struct for error messages: `Go struct field <struct>.<field> of type <type>`. */
export class GoStruct {
  constructor(
    readonly obj: JsonObject,
    readonly structName: string,
  ) {}

  static from(raw: unknown, structName: string): GoStruct {
    if (!isObject(raw)) {
      throw new GoJsonError(`json: cannot unmarshal ${jsonTypeName(raw)} into Go value of type ${structName}`);
    }
    return new GoStruct(raw, structName);
  }

  /**
   * Go's UnmarshalTypeError for field `name`. Go names the literal (`number 1.5`, `number -1`) only when a
   * number does not fit an integer field.
   */
  mismatch(name: string, v: unknown, goType: string): GoJsonError {
    const value = typeof v === 'number' && /^u?int(8|16|32|64)?$/.test(goType) ? `number ${v}` : jsonTypeName(v);
    return new GoJsonError(`json: cannot unmarshal ${value} into Go struct field ${this.structName}.${name} of type ${goType}`);
  }

  raw(name: string): unknown {
    return field(this.obj, name);
  }

  has(name: string): boolean {
    return field(this.obj, name) !== undefined;
  }

  string(name: string): string | undefined {
    const v = field(this.obj, name);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw this.mismatch(name, v, 'string');
    return v;
  }

  /** A bool field; absent or null reads as `dflt` (Go's zero value is false, a pre-set field keeps its default). */
  bool(name: string): boolean | undefined;
  bool(name: string, dflt: boolean): boolean;
  bool(name: string, dflt?: boolean): boolean | undefined {
    const v = field(this.obj, name);
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') throw this.mismatch(name, v, 'bool');
    return v;
  }

  int(name: string): number | undefined {
    const v = field(this.obj, name);
    if (v === undefined) return undefined;
    if (typeof v !== 'number') throw this.mismatch(name, v, 'int');
    if (!Number.isInteger(v)) throw this.mismatch(name, v, 'int');
    return v;
  }

  /** A uint field (Go: a negative or fractional number is a type error); absent or null reads as 0. */
  uint(name: string): number {
    const v = field(this.obj, name);
    if (v === undefined) return 0;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw this.mismatch(name, v, 'uint');
    return v;
  }

  object(name: string, structName = name): GoStruct | undefined {
    const v = field(this.obj, name);
    if (v === undefined) return undefined;
    if (!isObject(v)) throw this.mismatch(name, v, structName);
    return new GoStruct(v, structName);
  }

  /** A map[string]interface{} field, kept raw. */
  map(name: string): JsonObject | undefined {
    const v = field(this.obj, name);
    if (v === undefined) return undefined;
    if (!isObject(v)) throw this.mismatch(name, v, 'map[string]interface {}');
    return v;
  }

  array(name: string, goType = '[]interface {}'): unknown[] | undefined {
    const v = field(this.obj, name);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw this.mismatch(name, v, goType);
    return v;
  }

  stringArray(name: string): string[] | undefined {
    const arr = this.array(name, '[]string');
    if (arr === undefined) return undefined;
    return arr.map((item) => {
      if (typeof item !== 'string') throw this.mismatch(name, item, 'string');
      return item;
    });
  }
}

/** Go's json.Marshal escaping of <, >, & and U+2028/9 (they only ever occur inside strings). */
function goEscape(text: string): string {
  return text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * json.Marshal of one string: `marshalString('é<')` is `"é\u003c"`. Not Go's %q (shared/go/quote.ts),
 * which escapes non-ASCII and keeps `<`.
 */
export function marshalString(s: string): string {
  return goEscape(JSON.stringify(s));
}

/** json.MarshalIndent(v, "", "    "): what skel prints for results and errors (no trailing newline). */
export function marshalIndent(v: unknown): string {
  return goEscape(JSON.stringify(v, null, 4));
}

/** json.Marshal(v): compact, keys in the order given (a struct's field order), undefined fields left out. */
export function marshal(v: unknown): string {
  return goEscape(JSON.stringify(v));
}

/** Go marshals map[string]interface{} with sorted keys at every level. */
export function sortKeysDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeysDeep);
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeysDeep(v[k]);
    return out;
  }
  return v;
}
