// Delegation by exec, as libcni/invoke does it: the plugin `<type>` is the first regular file named so
// in CNI_PATH; it inherits our environment with only CNI_COMMAND overridden, gets the bytes we choose
// on stdin, and its stderr is copied to ours. A delegate's {code,msg,details} error passes through
// unchanged (as a CniError); other failures are worded like libcni's pluginErr.
//
// In-process fast path: a plugin binary of ours may register other plugins of ours that it carries in
// its bundle (flannel carries bridge and host-local; bridge carries host-local). When the file CNI_PATH
// gives for `<type>` is that plugin from the same build as the running executable, the delegate runs
// inside this process. The build is named by a line `// flannel-ts build <id>`: the second line of a
// Node-script bundle (scripts/build.mjs), the last line of a compiled executable (scripts/build-exe.mjs
// appends it after the ELF image, where bun's loader never looks; the running executable knows its own
// id from the build: setSelf). Reading it costs one open and two small preads, not the 100 MiB file;
// a compiled executable installed under several names (links) is one build whatever the name. It runs
// through the same skeleton, fed the same stdin and environment, and its exit code and stdout are
// judged exactly as an exec'd one's (its stderr is passed on after it ends, as for an exec). That
// saves one Node start per delegation (scripts/bench/cni-latency.mjs measures it). Anything else found on CNI_PATH (a Go plugin, even
// beside a copy of ours; another build of ours) is exec'd. CNI_TS_EXEC_DELEGATES=1 forces exec.
//
// Delegation loops: a config whose delegate names the calling plugin (`{"type":"bridge","ipam":
// {"type":"bridge"}}`) would start an unbounded chain of processes (Go's bridge ADD fails only because
// the inner call finds the veth made by the outer one; its DEL forks until the runtime kills it). Every
// delegation therefore carries the call chain (the resolved plugin files, outermost first, ':'-separated
// like CNI_PATH) in CNI_TS_DELEGATION_CHAIN, to exec'd and in-process delegates alike; Go plugins pass
// it on untouched, since a delegate inherits the caller's environment. A delegation is refused with
// code 7 (invalid network config) before anything runs when its plugin is already in the chain (the
// caller itself included) or when the chain is MAX_DELEGATION_DEPTH deep.
import { closeSync, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { errorMessage } from '../log.js';
import { CniError, CniErrorCode } from './errors.js';
import { isObject, parseJson } from '../go/json.js';
import { parseResult } from './version.js';
import { runProcess } from '../proc/run.js';
import type { Result } from './types.js';
import type { PluginIo } from './skel.js';

export interface InvokeOptions {
  /** environment for the delegate (default: process.env); CNI_COMMAND is always overridden */
  env?: Record<string, string | undefined>;
  /** where stderr of a successful delegate goes (default: our stderr) */
  writeStderr?: (text: string) => void;
}

export function findInPath(type: string, cniPath: string): string {
  if (type === '') throw new Error('no plugin name provided');
  if (type.includes('/')) throw new Error(`invalid plugin name: ${type}`);
  const dirs = cniPath.split(':').filter((d) => d !== '');
  if (dirs.length === 0) throw new Error('no paths provided');
  for (const dir of dirs) {
    const full = join(dir, type);
    try {
      if (statSync(full).isFile()) return full;
    } catch {
      // not here
    }
  }
  return failNotFound(type, dirs);
}

function failNotFound(type: string, dirs: string[]): never {
  throw new Error(`failed to find plugin "${type}" in path [${dirs.join(' ')}]`);
}

export interface ExecOutput {
  stdout: Buffer;
  stderr: Buffer;
}

/** Runs a plugin binary; resolves with its output on exit 0, rejects with a CniError otherwise. */
export async function execPlugin(pluginPath: string, stdin: Buffer | string, env: Record<string, string | undefined>): Promise<ExecOutput> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await execOnce(pluginPath, stdin, env);
    } catch (err) {
      // "text file busy": the binary is being replaced; libcni retries 5 times, 1 s apart.
      if ((err as NodeJS.ErrnoException).code === 'ETXTBSY' && attempt < 5) {
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      throw err;
    }
  }
}

async function execOnce(pluginPath: string, stdin: Buffer | string, env: Record<string, string | undefined>): Promise<ExecOutput> {
  // a start failure (ENOENT, ETXTBSY, ...) rejects with its code
  const { code, signal, stdout, stderr } = await runProcess([pluginPath], { input: stdin, env });
  if (code === 0) return { stdout, stderr };
  throw pluginError(stdout, stderr, signal ? `signal: ${signal}` : `exit status ${code ?? -1}`);
}

/** libcni's pluginErr. */
function pluginError(stdout: Buffer, stderr: Buffer, exitText: string): CniError {
  const out = stdout.toString('utf8');
  if (out.length === 0) {
    const errText = stderr.toString('utf8');
    if (errText.length === 0) return new CniError(0, `netplugin failed with no error message: ${exitText}`);
    return new CniError(0, `netplugin failed: ${JSON.stringify(errText)}`);
  }
  let raw: unknown;
  try {
    raw = parseJson(out);
  } catch (err) {
    return new CniError(0, `netplugin failed but error parsing its diagnostic message ${JSON.stringify(out)}: ${errorMessage(err)}`);
  }
  if (!isObject(raw)) return new CniError(0, `netplugin failed but error parsing its diagnostic message ${JSON.stringify(out)}`);
  const code = typeof raw.code === 'number' ? raw.code : 0;
  return new CniError(code, typeof raw.msg === 'string' ? raw.msg : '', typeof raw.details === 'string' ? raw.details : '');
}

type Verb = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC';

/** A plugin of ours run inside this process: the skeleton with the given io; resolves to the exit code. */
export type InProcessPlugin = (io: PluginIo) => Promise<number>;

const inProcess = new Map<string, InProcessPlugin>();

/** Lets delegations to `type` run in this process when CNI_PATH resolves it to our own build of it. */
export function registerInProcess(type: string, run: InProcessPlugin): void {
  inProcess.set(type, run);
}

const BUILD_LINE = '// flannel-ts build ';
/** How many bytes at the end of a compiled executable hold its build line (scripts/build-exe.mjs). */
export const TRAILER_BYTES = 128;

/**
 * The `// flannel-ts build <id>` line of an executable of ours, or undefined: the second line of a
 * `#!` script, the last line of an ELF file (both read with one small pread each).
 */
export function buildLine(file: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(512);
    const n = readSync(fd, head, 0, head.length, 0);
    if (head.subarray(0, 2).toString('latin1') === '#!') {
      const line = head.subarray(0, n).toString('latin1').split('\n')[1];
      return line?.startsWith(BUILD_LINE) ? line : undefined;
    }
    if (n < 4 || head.readUInt32BE(0) !== 0x7f454c46) return undefined; // not \x7fELF
    const size = fstatSync(fd).size;
    const tail = Buffer.alloc(Math.min(TRAILER_BYTES, size));
    const m = readSync(fd, tail, 0, tail.length, size - tail.length);
    const text = tail.subarray(0, m).toString('latin1');
    if (!text.endsWith('\n')) return undefined;
    const line = text.slice(text.lastIndexOf('\n', text.length - 2) + 1, -1);
    return line.startsWith(BUILD_LINE) ? line : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The running executable: the file it was exec'd as and its build line (undefined: not of a build). */
interface Self {
  file: string;
  build: string | undefined;
}
let self: Self | undefined;

/**
 * For a compiled executable (cmd/flannel-cni.ts): the file we were exec'd as (process.argv[1] names
 * bun's virtual entry there) and our build id, compiled in. A Node-script bundle needs no call: its
 * file is process.argv[1], whose second line is its build line.
 */
export function setSelf(file: string, buildId: string): void {
  self = { file, build: `${BUILD_LINE}${buildId}` };
}

function ownSelf(): Self {
  if (self === undefined) {
    const file = process.argv[1] ?? '';
    self = { file, build: buildLine(file) };
  }
  return self;
}

function inProcessFor(type: string, pluginPath: string, env: Record<string, string | undefined>): InProcessPlugin | undefined {
  const run = inProcess.get(type);
  if (run === undefined || env.CNI_TS_EXEC_DELEGATES === '1') return undefined;
  const own = ownSelf().build;
  return own !== undefined && buildLine(pluginPath) === own ? run : undefined;
}

async function runInProcess(run: InProcessPlugin, stdin: Buffer | string, env: Record<string, string | undefined>): Promise<ExecOutput> {
  const out: string[] = [];
  const errOut: string[] = [];
  const code = await run({
    env,
    readStdin: () => Buffer.from(stdin),
    writeStdout: (t) => void out.push(t),
    writeStderr: (t) => void errOut.push(t),
  });
  const stdout = Buffer.from(out.join(''));
  const stderr = Buffer.from(errOut.join(''));
  if (code !== 0) throw pluginError(stdout, stderr, `exit status ${code}`);
  return { stdout, stderr };
}

/** The environment variable carrying the delegation call chain (see the header). */
export const CHAIN_ENV = 'CNI_TS_DELEGATION_CHAIN';
/** runtime → meta plugin (flannel) → main plugin (bridge) → IPAM (host-local) is 3 files; room to spare. */
export const MAX_DELEGATION_DEPTH = 8;

/**
 * A plugin file as the chain records it: resolved through symlinks (/opt/cni/bin/x → dist/bin/x), except
 * for a link to our multi-call executable under another name (bridge → flannel-cni): that one file is
 * flannel, bridge and host-local, so it is recorded by the link's name (its directory resolved), or
 * flannel → bridge would look like a loop. Hard links need nothing: realpath keeps their names.
 */
function resolved(file: string): string {
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return file;
  }
  if (basename(real) === basename(file) || !(buildLine(real) ?? '').startsWith(`${BUILD_LINE}exe-`)) return real;
  return join(realpathSync(dirname(file)), basename(file));
}

/**
 * The chain a delegation to `pluginPath` extends: the one we were handed, or (outermost plugin, exec'd
 * by the runtime) our own executable. Throws the code-7 error for a loop or a chain too deep.
 */
export function extendChain(type: string, pluginPath: string, env: Record<string, string | undefined>): string {
  const given = env[CHAIN_ENV] ?? '';
  const own = ownSelf().file;
  const chain = given !== '' ? given.split(':') : own !== '' ? [resolved(own)] : [];
  const target = resolved(pluginPath);
  const names = (files: string[]): string => files.map((f) => basename(f)).join(' → ');
  if (chain.includes(target)) {
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      `refusing to delegate to plugin "${type}": it is already running in this call (${names([...chain, target])}); check the delegate types in the network config (e.g. ipam.type)`,
    );
  }
  if (chain.length >= MAX_DELEGATION_DEPTH) {
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      `refusing to delegate to plugin "${type}": delegation depth limit (${MAX_DELEGATION_DEPTH}) reached (${names([...chain, target])})`,
    );
  }
  return [...chain, target].join(':');
}

async function delegate(verb: Verb, type: string, netconf: Buffer | string, o: InvokeOptions): Promise<Buffer> {
  const env: Record<string, string | undefined> = { ...(o.env ?? process.env), CNI_COMMAND: verb };
  const pluginPath = findInPath(type, env.CNI_PATH ?? '');
  env[CHAIN_ENV] = extendChain(type, pluginPath, env);
  const run = inProcessFor(type, pluginPath, env);
  const { stdout, stderr } = run !== undefined ? await runInProcess(run, netconf, env) : await execPlugin(pluginPath, netconf, env);
  if (stderr.length > 0) (o.writeStderr ?? ((t: string) => process.stderr.write(t)))(stderr.toString('utf8'));
  return stdout;
}

/** DelegateAdd: the delegate's result in the 1.0 shape (its cniVersion kept). */
export async function delegateAdd(type: string, netconf: Buffer | string, confVersion: string, o: InvokeOptions = {}): Promise<Result> {
  const stdout = await delegate('ADD', type, netconf, o);
  try {
    return parseResult(parseJson(stdout), confVersion);
  } catch (err) {
    throw new Error(`failed to parse the result of plugin "${type}": ${errorMessage(err)}`);
  }
}

export async function delegateDel(type: string, netconf: Buffer | string, o: InvokeOptions = {}): Promise<void> {
  await delegate('DEL', type, netconf, o);
}

export async function delegateCheck(type: string, netconf: Buffer | string, o: InvokeOptions = {}): Promise<void> {
  await delegate('CHECK', type, netconf, o);
}

export async function delegateStatus(type: string, netconf: Buffer | string, o: InvokeOptions = {}): Promise<void> {
  await delegate('STATUS', type, netconf, o);
}

/** DelegateGC: the runtime's GC (with `cni.dev/valid-attachments` in `netconf`) passed on to a delegate. */
export async function delegateGc(type: string, netconf: Buffer | string, o: InvokeOptions = {}): Promise<void> {
  await delegate('GC', type, netconf, o);
}
