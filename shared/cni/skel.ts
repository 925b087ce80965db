// runPlugin: the CNI skeleton (containernetworking/cni pkg/skel), the single place that turns the
// environment and stdin into a call and a result or error into protocol output.
//
// Order as skel HEAD: env (all missing variables in one code-4 error) → VERSION (stdin ignored) → stdin
// (code 5) → config validation (code 6/7) → container ID / ifname validation (3/4) → version check
// (code 1) → (ADD/DEL) code 8 if CNI_NETNS is the plugin's own netns → handler. A CniError passes
// through unchanged; any other error becomes code 999. Errors are printed as MarshalIndent'ed
// {code,msg,details} on stdout with exit status 1: stdout always carries exactly one JSON document.
//
// Where we differ from skel on purpose:
// - skel HEAD checks the own-netns case AFTER a successful ADD/DEL, so its stdout carries the result
//   and then the error (two documents; a delegating caller cannot parse that) and the work stays done.
//   We check before the handler runs: one error document, nothing allocated or configured.
// - skel reads all of stdin; we stop at MAX_STDIN (an endless stdin such as /dev/zero would grow memory
//   until the runtime kills us).
import { readSync, statSync, writeSync } from 'node:fs';
import { errorMessage } from '../log.js';
import { CniError, CniErrorCode } from './errors.js';
import { GoJsonError, isObject, jsonTypeName, parseJson, marshal, marshalIndent } from '../go/json.js';
import { PreformattedResult, type CmdArgs, type PluginFuncs } from './types.js';
import {
  CURRENT_VERSION,
  SUPPORTED_VERSIONS,
  decodeConfVersion,
  formatResult,
  incompatibleVersionError,
  isSupportedVersion,
  versionAtLeast,
} from './version.js';

export interface PluginIo {
  env: Record<string, string | undefined>;
  readStdin(): Buffer;
  writeStdout(text: string): void;
  writeStderr(text: string): void;
}

/**
 * The most stdin we read: 4 MiB. A network config (even a conflist entry with a large prevResult and
 * runtimeConfig) is a few KiB; 4 MiB is ~1000× that and still parses in tens of ms and tens of MB. Past
 * it the input is not a config but a runaway producer (an endless pipe, /dev/zero): a code-5 error.
 */
export const MAX_STDIN = 4 * 1024 * 1024;

/** Reads fd until EOF, failing once more than `max` bytes came (the stream is not drained). */
export function readBounded(fd: number, max: number = MAX_STDIN): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, max + 1 - total));
    let n: number;
    try {
      n = readSync(fd, chunk, 0, chunk.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // a non-blocking stdin with nothing (more) to read; EOF is what Windows says at the end
      if (code === 'EAGAIN' || code === 'EOF') break;
      throw err;
    }
    if (n === 0) break;
    chunks.push(chunk.subarray(0, n));
    total += n;
    if (total > max) throw new Error(`more than ${max} bytes (${max / (1024 * 1024)} MiB): not a network config`);
  }
  return Buffer.concat(chunks, total);
}

/** The real process: synchronous fd writes (cheaper at start-up than building process.stdout). */
export const processIo: PluginIo = {
  env: process.env,
  readStdin: () => readBounded(0),
  writeStdout: (text) => writeFd(1, text),
  writeStderr: (text) => writeFd(2, text),
};

function writeFd(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off);
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/**
 * ValidateInterfaceName's `/`, `:` and unicode.IsSpace (Go's White_Space set: it has U+0085 and not
 * U+FEFF, unlike JavaScript's \s). NUL cannot reach us through the environment; it is refused anyway.
 */
const FORBIDDEN_IN_IFNAME = /[/:\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\0]/u;
const MAX_IFNAME = 15;

type Command = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';
const REQUIRED: ReadonlyArray<[string, readonly Command[]]> = [
  ['CNI_COMMAND', ['ADD', 'CHECK', 'DEL', 'GC', 'STATUS', 'VERSION']],
  ['CNI_CONTAINERID', ['ADD', 'CHECK', 'DEL']],
  ['CNI_NETNS', ['ADD', 'CHECK']],
  ['CNI_IFNAME', ['ADD', 'CHECK', 'DEL']],
  ['CNI_ARGS', []],
  ['CNI_PATH', ['ADD', 'CHECK', 'DEL', 'GC', 'STATUS']],
  ['CNI_NETNS_OVERRIDE', []],
];

export function validateContainerId(id: string): void {
  if (id === '') throw new CniError(CniErrorCode.UnknownContainer, 'missing containerID');
  if (!NAME_RE.test(id)) throw new CniError(CniErrorCode.InvalidEnvironmentVariables, 'invalid characters in containerID', id);
}

export function validateInterfaceName(name: string): void {
  if (name.length === 0) throw new CniError(CniErrorCode.InvalidEnvironmentVariables, 'interface name is empty');
  if (Buffer.byteLength(name) > MAX_IFNAME) {
    throw new CniError(CniErrorCode.InvalidEnvironmentVariables, 'interface name is too long', `interface name should be less than ${MAX_IFNAME + 1} characters`);
  }
  if (name === '.' || name === '..') throw new CniError(CniErrorCode.InvalidEnvironmentVariables, 'interface name is . or ..');
  if (FORBIDDEN_IN_IFNAME.test(name)) {
    throw new CniError(CniErrorCode.InvalidEnvironmentVariables, 'interface name contains / or : or whitespace characters');
  }
}

export function validateNetworkName(name: string): void {
  if (!NAME_RE.test(name)) throw new CniError(CniErrorCode.InvalidNetworkConfig, 'invalid characters found in network name', name);
}

/** skel's validateConfig: the config must be JSON with a valid `name`. Returns the parsed config. */
export function validateConfig(stdin: Buffer): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = parseJson(stdin);
  } catch (err) {
    throw new CniError(CniErrorCode.DecodingFailure, `error unmarshall network config: ${errorMessage(err)}`);
  }
  if (!isObject(raw)) {
    throw new CniError(CniErrorCode.DecodingFailure, `error unmarshall network config: json: cannot unmarshal ${jsonTypeName(raw)} into Go value of type struct { Name string "json:\\"name\\"" }`);
  }
  let name: unknown;
  for (const k of Object.keys(raw)) if (k.toLowerCase() === 'name') name = raw[k];
  if (name !== undefined && name !== null && typeof name !== 'string') {
    throw new CniError(CniErrorCode.DecodingFailure, `error unmarshall network config: json: cannot unmarshal ${jsonTypeName(name)} into Go struct field .name of type string`);
  }
  if (!name) throw new CniError(CniErrorCode.InvalidNetworkConfig, 'missing network name');
  validateNetworkName(name);
  return raw;
}

/** Runs one plugin invocation; returns the process exit code (0 or 1). */
export async function runPlugin(funcs: PluginFuncs, info: { about: string }, io: PluginIo = processIo): Promise<number> {
  try {
    await dispatch(funcs, info, io);
    return 0;
  } catch (err) {
    const e =
      err instanceof CniError
        ? err
        : err instanceof GoJsonError
          ? new CniError(CniErrorCode.Internal, err.message)
          : new CniError(CniErrorCode.Internal, errorMessage(err));
    io.writeStdout(marshalIndent(e.toJSON()));
    return 1;
  }
}

async function dispatch(funcs: PluginFuncs, info: { about: string }, io: PluginIo): Promise<void> {
  const env = (k: string): string => io.env[k] ?? '';
  const cmd = env('CNI_COMMAND');
  const missing = REQUIRED.filter(([name, cmds]) => env(name) === '' && (name === 'CNI_COMMAND' || (cmds as readonly string[]).includes(cmd))).map(([n]) => n);
  if (missing.length > 0) {
    if (cmd === '' && info.about) {
      io.writeStderr(`${info.about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n`);
      return;
    }
    throw new CniError(CniErrorCode.InvalidEnvironmentVariables, `required env variables [${missing.join(',')}] missing`);
  }
  if (cmd === 'VERSION') {
    io.writeStdout(marshal({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS }) + '\n');
    return;
  }
  let stdinData: Buffer;
  try {
    stdinData = io.readStdin();
  } catch (err) {
    throw new CniError(CniErrorCode.IoFailure, `error reading from stdin: ${errorMessage(err)}`);
  }
  const args: CmdArgs = {
    containerId: env('CNI_CONTAINERID'),
    netns: env('CNI_NETNS'),
    ifName: env('CNI_IFNAME'),
    args: env('CNI_ARGS'),
    path: env('CNI_PATH'),
    netnsOverride: env('CNI_NETNS_OVERRIDE'),
    stdinData,
  };
  const conf = validateConfig(stdinData);
  const verb = VERBS.get(cmd);
  if (verb?.container) {
    validateContainerId(args.containerId);
    validateInterfaceName(args.ifName);
  }
  const version = decodeConfVersion(conf);
  if (!verb) throw new CniError(CniErrorCode.InvalidEnvironmentVariables, `unknown CNI_COMMAND: ${cmd}`);
  if (verb.since && !versionAtLeast(version, verb.since)) {
    throw new CniError(CniErrorCode.IncompatibleCniVersion, `config version does not allow ${cmd}`);
  }
  if (!isSupportedVersion(version)) throw incompatibleVersionError(version);
  if (verb.ownNetns) checkNotOwnNetns(args);
  await verb.run(funcs, args, io, version);
}

interface Verb {
  /** the container ID and ifname are validated */
  container?: true;
  /** the least config version that allows the verb ("config version does not allow CHECK") */
  since?: string;
  /** CNI_NETNS must not be the plugin's own netns */
  ownNetns?: true;
  run(f: PluginFuncs, a: CmdArgs, io: PluginIo, version: string): Promise<void>;
}

/** The verbs after VERSION, as skel checks them: one path in dispatch, the differences here. */
const VERBS = new Map<string, Verb>([
  ['ADD', { container: true, ownNetns: true, run: printAdd }],
  ['DEL', { container: true, ownNetns: true, run: (f, a) => f.del(a) }],
  ['CHECK', { container: true, since: '0.4.0', run: async (f, a) => f.check?.(a) }],
  ['STATUS', { since: '1.1.0', run: async (f, a) => f.status?.(a) }],
  ['GC', { since: '1.1.0', run: async (f, a) => f.gc?.(a) }],
]);

/** ADD prints its result at the config's version. */
async function printAdd(f: PluginFuncs, a: CmdArgs, io: PluginIo, version: string): Promise<void> {
  const result = await f.add(a);
  io.writeStdout(result instanceof PreformattedResult ? result.text : formatResult(result, version));
}

/**
 * skel HEAD's own-netns check (its wording and code 8), run BEFORE the ADD/DEL handler (skel runs it
 * after, printing the result and then the error): a runtime that hands the plugin its own netns as the
 * container's would configure the host instead of a pod. Skipped with CNI_NETNS_OVERRIDE=1/true (case
 * insensitive, as skel); a path that cannot be read is not this error (DEL of a gone netns; ADD then
 * fails in the plugin with its own words).
 */
function checkNotOwnNetns(args: CmdArgs): void {
  const o = args.netnsOverride.toLowerCase();
  if (o === '1' || o === 'true' || args.netns === '') return;
  let same = false;
  try {
    const a = statSync(args.netns);
    const b = statSync('/proc/self/ns/net');
    same = a.dev === b.dev && a.ino === b.ino;
  } catch {
    return;
  }
  if (same) throw new CniError(CniErrorCode.InvalidNetNs, "plugin's netns and netns from CNI_NETNS should not be the same");
}

