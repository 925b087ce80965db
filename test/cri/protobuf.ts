// The smallest protobuf (proto3) wire codec the CRI client needs: varints, length-delimited fields
// (strings, nested messages, map entries) and nothing else. Field numbers come from runtime.v1
// (k8s.io/cri-api pkg/apis/runtime/v1/api.proto); the message shapes live in messages.ts.

/** Builds one message: fields are appended in call order, defaults (0, "", false, empty) are omitted like proto3 does. */
export class Writer {
  private chunks: Buffer[] = [];

  private tag(field: number, wireType: 0 | 2): void {
    this.varint((field << 3) | wireType);
  }

  private varint(n: number | bigint): void {
    let v = BigInt(n);
    if (v < 0n) v = BigInt.asUintN(64, v); // int64/int32 negatives are ten-byte two's complement
    const out: number[] = [];
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) b |= 0x80;
      out.push(b);
    } while (v > 0n);
    this.chunks.push(Buffer.from(out));
  }

  uint(field: number, n: number | boolean | undefined): this {
    const v = typeof n === 'boolean' ? Number(n) : (n ?? 0);
    if (v !== 0) {
      this.tag(field, 0);
      this.varint(v);
    }
    return this;
  }

  bytes(field: number, b: Buffer | undefined): this {
    if (b === undefined) return this;
    this.tag(field, 2);
    this.varint(b.length);
    this.chunks.push(b);
    return this;
  }

  string(field: number, s: string | undefined): this {
    return s ? this.bytes(field, Buffer.from(s, 'utf8')) : this;
  }

  /** A nested message: written even when empty, since presence of a message field carries meaning. */
  message(field: number, m: Writer | undefined): this {
    return m ? this.bytes(field, m.finish()) : this;
  }

  /** map<string,string>: one entry message (key = 1, value = 2) per pair. */
  map(field: number, m: Record<string, string> | undefined): this {
    for (const [k, v] of Object.entries(m ?? {})) this.message(field, new Writer().string(1, k).string(2, v));
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** One decoded field: a varint as bigint, a length-delimited field as its bytes. */
export type Value = bigint | Buffer;

/** Decodes a message into field number → values (repeated fields keep their order); fixed32/64 are skipped. */
export function decode(buf: Buffer): Map<number, Value[]> {
  const fields = new Map<number, Value[]>();
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error('protobuf: truncated varint');
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('protobuf: varint longer than 10 bytes');
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    let v: Value;
    if (wire === 0) v = varint();
    else if (wire === 2) {
      const len = Number(varint());
      if (pos + len > buf.length) throw new Error(`protobuf: field ${field} runs past the end`);
      v = buf.subarray(pos, pos + len);
      pos += len;
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4; // fixed64/fixed32: no field we read uses them
      continue;
    } else throw new Error(`protobuf: unsupported wire type ${wire} (field ${field})`);
    const list = fields.get(field);
    if (list) list.push(v);
    else fields.set(field, [v]);
  }
  return fields;
}

/** Typed readers over a decoded message: proto3 defaults when a field is absent. */
export class Reader {
  readonly fields: Map<number, Value[]>;

  constructor(buf: Buffer) {
    this.fields = decode(buf);
  }

  private last(field: number): Value | undefined {
    const l = this.fields.get(field);
    return l?.[l.length - 1];
  }

  string(field: number): string {
    const v = this.last(field);
    return Buffer.isBuffer(v) ? v.toString('utf8') : '';
  }

  uint(field: number): number {
    const v = this.last(field);
    return typeof v === 'bigint' ? Number(v) : 0;
  }

  bool(field: number): boolean {
    return this.uint(field) !== 0;
  }

  message(field: number): Reader | undefined {
    const v = this.last(field);
    return Buffer.isBuffer(v) ? new Reader(v) : undefined;
  }

  messages(field: number): Reader[] {
    return (this.fields.get(field) ?? []).filter(Buffer.isBuffer).map((b) => new Reader(b));
  }

  map(field: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.messages(field)) out[e.string(1)] = e.string(2);
    return out;
  }
}
