// install-cni: what kube-flannel.yml's init containers do (upstream: two `cp -f`), without their gaps.
// It puts the CNI executable(s) into the host's CNI bin dir and the conflist into its conf dir so that
// a runtime scanning those dirs never sees half a file: each file is written under a temporary name
// in the target dir (ending in .tmp, so no runtime loads it as a .conf/.conflist), fsynced, renamed
// over the target (atomic within one filesystem), and the dir is fsynced so the rename survives a
// crash. A file whose bytes and mode already match is left alone (not even its mtime changes): an init
// container that runs at every pod restart rewrites nothing and wakes no config watcher.
import { randomBytes } from 'node:crypto';
import { type Stats, constants } from 'node:fs';
import { link, lstat, mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';

export interface InstallOptions {
  /** where the executables are read from (the image's dist/bin) */
  sourceDir: string;
  /** executables to install, by CNI type name */
  plugins: string[];
  /** host CNI bin dir (kubelet/containerd `bin_dir`); undefined = no executables */
  binDir?: string;
  /** host CNI conf dir (`conf_dir`); undefined = no conflist */
  confDir?: string;
  /** the conflist to install (the ConfigMap's cni-conf.json) */
  conflist?: string;
  /** its name in confDir */
  conflistName: string;
  /** rewrite the executables' `#!` line to this node binary (the host's, when it differs from the image's) */
  nodePath?: string;
}

export type Outcome = 'installed' | 'unchanged';

export interface Installed {
  path: string;
  outcome: Outcome;
}

/** An error an operator can act on: it names the file and what to do. */
export class InstallError extends Error {}

/** Our temporary names: `.<target>.<pid>-<random>.install-cni.tmp`, recognisable for clean-up after a crash. */
const tmpName = (name: string) => `.${name}.${process.pid}-${randomBytes(4).toString('hex')}.install-cni.tmp`;
const isOurTmp = (f: string, name: string) => f.startsWith(`.${name}.`) && f.endsWith('.install-cni.tmp');

/** The file at `target` (lstat'ed as `current`) already has exactly these bytes and this mode. */
async function holds(target: string, current: Stats | undefined, data: Buffer, mode: number): Promise<boolean> {
  return current?.isFile() === true && (current.mode & 0o7777) === mode && current.size === data.length && (await readFile(target)).equals(data);
}

/**
 * Puts a new dir/name in place atomically: `make` creates it under a temporary name, which is then renamed
 * over the target (a symlink there is replaced, never followed) and the directory synced.
 */
async function replaceAtomically(dir: string, name: string, current: Stats | undefined, make: (tmp: string) => Promise<void>): Promise<Outcome> {
  const target = join(dir, name);
  if (current?.isDirectory()) throw new InstallError(`${target} is a directory; remove it so the file can be installed`);
  const tmp = join(dir, tmpName(name));
  try {
    await make(tmp);
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new InstallError(`cannot install ${target}: ${(err as Error).message}`);
  }
  await syncDir(dir);
  return 'installed';
}

/**
 * Writes `data` to dir/name atomically with `mode`, unless the file there already has exactly these bytes
 * and this mode. Never follows a symlink at the target: a symlink is replaced by the file.
 */
export async function installFile(dir: string, name: string, data: Buffer, mode: number): Promise<Outcome> {
  const target = join(dir, name);
  const current = await lstat(target).catch(() => undefined);
  if (await holds(target, current, data, mode)) return 'unchanged';
  return replaceAtomically(dir, name, current, async (tmp) => {
    // leftovers of an install-cni killed between write and rename
    for (const f of await readdir(dir)) if (isOurTmp(f, name)) await rm(join(dir, f), { force: true });
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode); // the umask may have cut the mode given to open
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
}

/**
 * Makes dir/name a hard link to dir/existing (installed just before with `data`), atomically: the link is
 * made under a temporary name and renamed over the target. Left alone when it already is that file or
 * already has exactly these bytes and this mode.
 */
export async function installLink(dir: string, name: string, existing: string, data: Buffer, mode: number): Promise<Outcome> {
  const target = join(dir, name);
  const [current, source] = await Promise.all([lstat(target).catch(() => undefined), stat(join(dir, existing))]);
  if (current?.isFile() && current.ino === source.ino && current.dev === source.dev) return 'unchanged';
  if (await holds(target, current, data, mode)) return 'unchanged';
  return replaceAtomically(dir, name, current, (tmp) => link(join(dir, existing), tmp));
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The conflist must be what a runtime can load: JSON with a name and a non-empty plugins list, each with a type. */
export function checkConflist(text: string, from: string): void {
  let c: unknown;
  try {
    c = JSON.parse(text);
  } catch (err) {
    throw new InstallError(`${from} is not valid JSON (${(err as Error).message}); not installing it`);
  }
  const o = c as { name?: unknown; plugins?: unknown };
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new InstallError(`${from}: a conflist must be a JSON object`);
  if (typeof o.name !== 'string' || o.name === '') throw new InstallError(`${from}: the conflist has no "name"`);
  if (!Array.isArray(o.plugins) || o.plugins.length === 0) throw new InstallError(`${from}: the conflist has no "plugins" list`);
  o.plugins.forEach((p: unknown, i: number) => {
    if (typeof (p as { type?: unknown })?.type !== 'string') throw new InstallError(`${from}: plugins[${i}] has no "type"`);
  });
}

/** The executable as it should land on the host: its `#!` line pointed at nodePath when one is given. */
export function withInterpreter(code: Buffer, nodePath: string | undefined, from: string): Buffer {
  if (nodePath === undefined) return code;
  if (code[0] !== 0x23 || code[1] !== 0x21) throw new InstallError(`${from} has no #! line to point at ${nodePath}`);
  const eol = code.indexOf(0x0a);
  if (eol < 0) throw new InstallError(`${from}: the #! line never ends`);
  const line = code.subarray(0, eol).toString('utf8');
  // the daemon launcher is `#!/usr/bin/env -S <node> <flags>`: keep env and the flags, swap the node
  const env = /^#!\S*\/env -S (\S+)(.*)$/.exec(line);
  const head = env ? line.replace(env[1]!, nodePath) : `#!${nodePath}`;
  return Buffer.concat([Buffer.from(head, 'utf8'), code.subarray(eol)]);
}

/** Reads and checks everything first, then installs: a bad input leaves the host untouched. */
export async function install(o: InstallOptions): Promise<Installed[]> {
  if (o.binDir === undefined && o.confDir === undefined) throw new InstallError('nothing to do: give --cni-bin-dir and/or --cni-conf-dir');
  if (o.confDir !== undefined && o.conflist === undefined) throw new InstallError('--cni-conf-dir needs --conflist (the file to install there)');
  if (o.nodePath !== undefined && !isAbsolute(o.nodePath)) throw new InstallError(`--node must be an absolute path (a runtime execs plugins with a bare PATH): ${o.nodePath}`);
  if (/[/\\]|^\.\.?$|^$/.test(o.conflistName)) throw new InstallError(`--conflist-name must be a plain file name: ${JSON.stringify(o.conflistName)}`);

  // `linkTo`: the name, installed just before, that this one is a hard link to (see installLink)
  const files: Array<{ dir: string; name: string; data: Buffer; mode: number; linkTo?: string }> = [];
  if (o.binDir !== undefined) {
    if (o.plugins.length === 0) throw new InstallError('--plugins is empty');
    /** "dev:ino" of a source file → the first plugin name read from it */
    const seen = new Map<string, { name: string; data: Buffer }>();
    for (const p of o.plugins) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(p)) throw new InstallError(`not a CNI plugin name: ${JSON.stringify(p)}`);
      const from = join(o.sourceDir, p);
      const st = await stat(from).catch(() => undefined);
      if (!st?.isFile()) throw new InstallError(`no executable ${p} in ${o.sourceDir} (is this the flannel-ts image?)`);
      // the self-contained multi-call executable (dist/exe) is one ~100 MiB file under several names:
      // read once, installed once, the other names hard links to that copy
      const first = seen.get(`${st.dev}:${st.ino}`);
      if (first !== undefined) {
        files.push({ dir: o.binDir, name: p, data: first.data, mode: 0o755, linkTo: first.name });
        continue;
      }
      const data = withInterpreter(await readFile(from), o.nodePath, from);
      seen.set(`${st.dev}:${st.ino}`, { name: p, data });
      files.push({ dir: o.binDir, name: p, data, mode: 0o755 });
    }
    // the Node-script build's native addons sit next to the executables when the build made them (else
    // the plugins fall back to iproute2 and flock(1)); a self-contained executable carries its own
    for (const [file, wanted] of [
      ['flannel.node', true],
      ['flock.node', o.plugins.includes('host-local')],
    ] as const) {
      const addon = join(o.sourceDir, file);
      if (wanted && (await stat(addon).catch(() => undefined))?.isFile()) {
        files.push({ dir: o.binDir, name: file, data: await readFile(addon), mode: 0o644 });
      }
    }
  }
  if (o.confDir !== undefined && o.conflist !== undefined) {
    const text = await readFile(o.conflist, 'utf8').catch((err: Error) => {
      throw new InstallError(`cannot read the conflist ${o.conflist}: ${err.message}`);
    });
    checkConflist(text, o.conflist);
    files.push({ dir: o.confDir, name: o.conflistName, data: Buffer.from(text, 'utf8'), mode: 0o644 });
  }

  const out: Installed[] = [];
  // executables before the conflist: a runtime that sees the conflist can exec what it names
  for (const f of files) {
    await mkdir(f.dir, { recursive: true }).catch((err: Error) => {
      throw new InstallError(`cannot create ${f.dir}: ${err.message}`);
    });
    const outcome = f.linkTo !== undefined ? await installLink(f.dir, f.name, f.linkTo, f.data, f.mode) : await installFile(f.dir, f.name, f.data, f.mode);
    out.push({ path: join(f.dir, f.name), outcome });
  }
  return out;
}
