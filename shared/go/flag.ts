// Go's `flag` package as flanneld and flannelctl use it: -x and --x, -x=v or -x v, a boolean takes no
// separate value, Go's boolean spellings and error texts, and the usage lines `flag.PrintDefaults`
// prints. The flag tables stay with their commands (daemon/options.ts, ctl/flags.ts).

export type FlagKind = 'string' | 'list' | 'bool' | 'int';

export interface FlagDef<K extends string = string> {
  name: string;
  key: K;
  kind: FlagKind;
  dflt: unknown;
  usage: string;
  /** another name that sets the same flag */
  alias?: string;
}

/** strconv.ParseBool's spellings */
function parseBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** Sets `f` in `o` from its text; returns Go's error text when the text does not parse. */
export function setFlagValue(o: Record<string, unknown>, f: FlagDef, raw: string): string | undefined {
  switch (f.kind) {
    case 'string':
      o[f.key] = raw;
      return undefined;
    case 'list':
      (o[f.key] as string[]).push(raw);
      return undefined;
    case 'bool': {
      const b = parseBool(raw);
      if (b === undefined) return `invalid boolean value ${JSON.stringify(raw)} for -${f.name}: parse error`;
      o[f.key] = b;
      return undefined;
    }
    case 'int':
      if (!/^[+-]?\d+$/.test(raw)) return `invalid value ${JSON.stringify(raw)} for flag -${f.name}: parse error`;
      o[f.key] = Number(raw);
      return undefined;
  }
}

/** Every flag at its default (a list flag starts empty). */
export function flagDefaults(defs: readonly FlagDef[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of defs) o[f.key] = f.kind === 'list' ? [] : f.dflt;
  return o;
}

export type FlagScan =
  /** parsed up to argv[stop] (argv.length, `--`, or the first non-flag, where Go's flag stops) */
  | { kind: 'done'; seen: Set<string>; stop: number }
  | { kind: 'help' }
  | { kind: 'error'; msg: string };

/** Parses the leading flags of `argv` into `o`. */
export function scanFlags(defs: readonly FlagDef[], argv: readonly string[], o: Record<string, unknown>): FlagScan {
  const seen = new Set<string>();
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--' || !arg.startsWith('-') || arg === '-') break;
    let body = arg.replace(/^--?/, '');
    let value: string | undefined;
    const eq = body.indexOf('=');
    if (eq >= 0) {
      value = body.slice(eq + 1);
      body = body.slice(0, eq);
    }
    if (body === 'h' || body === 'help') return { kind: 'help' };
    const f = defs.find((x) => x.name === body || x.alias === body);
    if (!f) return { kind: 'error', msg: `flag provided but not defined: -${body}` };
    if (value === undefined) {
      if (f.kind === 'bool') value = 'true';
      else if (i + 1 >= argv.length) return { kind: 'error', msg: `flag needs an argument: -${body}` };
      else value = argv[++i]!;
    }
    const err = setFlagValue(o, f, value);
    if (err) return { kind: 'error', msg: err };
    seen.add(f.name);
  }
  return { kind: 'done', seen, stop: i };
}

/** The FLANNELD_* variable that fills a flag not given on the command line. */
export function flagEnvName(name: string): string {
  return `FLANNELD_${name.toUpperCase().replace(/-/g, '_')}`;
}

/**
 * Fills each flag of `defs` that `fill` accepts and the command line did not set (`seen`) from its
 * FLANNELD_<NAME> variable, as Go flanneld's flagsFromEnv; empty variables are skipped. The first
 * value that cannot be set is returned as its error.
 */
export function fillFlagsFromEnv<D extends FlagDef>(
  defs: readonly D[],
  o: Record<string, unknown>,
  seen: ReadonlySet<string>,
  env: Record<string, string | undefined>,
  fill: (f: D) => boolean,
): string | undefined {
  for (const f of defs) {
    if (seen.has(f.name) || !fill(f)) continue;
    const v = env[flagEnvName(f.name)];
    if (v === undefined || v === '') continue;
    const err = setFlagValue(o, f, v);
    if (err) return err;
  }
  return undefined;
}

/** flag.PrintDefaults' two lines per flag. */
export function flagUsageLines(defs: readonly FlagDef[]): string[] {
  const lines: string[] = [];
  for (const f of defs) {
    const d = f.kind === 'list' ? '' : f.kind === 'string' ? (f.dflt ? ` (default ${JSON.stringify(f.dflt)})` : '') : ` (default ${String(f.dflt)})`;
    lines.push(`  -${f.name}${f.kind === 'bool' ? '' : f.kind === 'int' ? ' int' : ' string'}`, `    \t${f.usage}${d}`);
  }
  return lines;
}
