// shared/go: Go's %q, json.Marshal and UnmarshalTypeError texts, and os.PathError wording.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { errnoText, pathError, readErrorOp } from '../../../../shared/go/errors.js';
import { GoJsonError, GoStruct, marshal, marshalString, parseJson } from '../../../../shared/go/json.js';
import { goQuote } from '../../../../shared/go/quote.js';

describe('goQuote (%q) and marshalString (json.Marshal) differ as Go does', () => {
  it.each([
    ['é<', '"\\u00e9<"', '"é\\u003c"'],
    ['a&b>c', '"a&b>c"', '"a\\u0026b\\u003ec"'],
    ['tab\t"q"', '"tab\\t\\"q\\""', '"tab\\t\\"q\\""'],
    ['\u2028', '"\\u2028"', '"\\u2028"'],
  ])('%j', (s, q, m) => {
    expect(goQuote(s)).toBe(q);
    expect(marshalString(s)).toBe(m);
  });

  it('marshal keeps key order, leaves undefined fields out and escapes keys too', () => {
    expect(marshal({ B: 1, a: undefined, '<k>': ['x', null, true] })).toBe('{"B":1,"\\u003ck\\u003e":["x",null,true]}');
  });
});

describe('GoStruct', () => {
  const s = (raw: unknown) => GoStruct.from(raw, 'Config');

  it('matches keys case-insensitively, the last one wins, null is absent', () => {
    const c = s(parseJson('{"subnetlen":8,"SubnetLen":24,"EnableIPv4":null}'));
    expect(c.uint('SubnetLen')).toBe(24);
    expect(c.bool('EnableIPv4', true)).toBe(true);
    expect(c.bool('EnableIPv6')).toBeUndefined();
    expect(c.uint('IPv6SubnetLen')).toBe(0);
  });

  it.each([
    ['{"SubnetLen":"24"}', 'json: cannot unmarshal string into Go struct field Config.SubnetLen of type uint'],
    ['{"SubnetLen":-1}', 'json: cannot unmarshal number -1 into Go struct field Config.SubnetLen of type uint'],
    ['{"SubnetLen":1.5}', 'json: cannot unmarshal number 1.5 into Go struct field Config.SubnetLen of type uint'],
  ])('uint %s', (text, msg) => {
    expect(() => s(parseJson(text)).uint('SubnetLen')).toThrow(msg);
  });

  it('a type error is a GoJsonError and a TypeError (both catch styles hold)', () => {
    let err: unknown;
    try {
      s({ EnableIPv4: 'yes' }).bool('EnableIPv4', true);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GoJsonError);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toBe('json: cannot unmarshal string into Go struct field Config.EnableIPv4 of type bool');
  });
});

describe('Go path errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'go-errors-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function failure(f: () => unknown): unknown {
    try {
      f();
    } catch (err) {
      return err;
    }
    throw new Error('expected a failure');
  }

  it('words a missing file as os.PathError and keeps code and cause', () => {
    const err = failure(() => readFileSync(join(dir, 'nope')));
    const p = pathError(readErrorOp(err), join(dir, 'nope'), err);
    expect(p.message).toBe(`open ${dir}/nope: no such file or directory`);
    expect(p.code).toBe('ENOENT');
    expect(p.cause).toBe(err);
  });

  it('uses Go texts where libuv words errno differently', () => {
    writeFileSync(join(dir, 'f'), '');
    expect(errnoText(failure(() => readFileSync(join(dir, 'f', 'x'))))).toBe('not a directory');
    expect(errnoText(failure(() => readFileSync(dir)))).toBe('is a directory');
    expect(errnoText(failure(() => readFileSync(join(dir, 'a\0b'))))).toBe('invalid argument');
    expect(errnoText(Object.assign(new Error('EEXIST: file already exists, mkdir'), { code: 'EEXIST' }))).toBe('file exists');
    expect(errnoText(new Error('ENOTREG: not a regular file (a named pipe)'))).toBe('not a regular file (a named pipe)');
  });
});
