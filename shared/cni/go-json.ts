// JSON the way Go's encoding/json reads it into a struct, for drop-in config compatibility:
// - object keys match field names case-insensitively (the last matching key wins), unknown keys are
//   ignored, `null` leaves the field at its zero value;
// - a value of the wrong JSON type is an error worded like Go's UnmarshalTypeError;
// - output is marshalled like json.MarshalIndent / json.Marshal, including Go's HTML escaping.
export type JsonObject = Record<string, unknown>;

export class GoJsonError extends Error {
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

  /** Go names the literal (`number 1.5`) only when a number does not fit a numeric field. */
  private mismatch(name: string, v: unknown, goType: string): GoJsonError {
    const value = typeof v === 'number' && goType === 'int' ? `number ${v}` : jsonTypeName(v);
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

  bool(name: string): boolean | undefined {
    const v = field(this.obj, name);
    if (v === undefined) return undefined;
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

/** json.MarshalIndent(v, "", "    "): what skel prints for results and errors (no trailing newline). */
export function marshalIndent(v: unknown): string {
  return goEscape(JSON.stringify(v, null, 4));
}

/** json.Marshal(v): compact. */
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
