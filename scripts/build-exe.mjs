// Builds the self-contained executables into dist/exe/ with `bun build --compile --bytecode`: no Node,
// no node_modules and no file beside them needed on the host (README "Self-contained executables").
//
// - dist/exe/flannel-cni: the CNI side, one multi-call file (cmd/flannel-cni.ts) that runs as the
//   program its name says; flannel, bridge, host-local, loopback, cnitool and install-cni in dist/exe
//   are HARD links to it. Hard, not symbolic: each name is then a regular file a runtime, `cp` or an
//   image layer treats like the Go plugin it replaces, and /proc/self/exe names the link itself.
// - dist/exe/flanneld: the node side, a separate file so a plugin start never loads the daemon's
//   modules: the daemon, and flannelctl under that name (cmd/flanneld.ts dispatches on argv[0]);
//   dist/exe/flannelctl is a hard link to it (no third ~100 MiB file for a small tool).
// The native shim (shared/native: flock, netlink, setns) is compiled first and embedded: the generated
// entry requires it statically (bun puts the .node file inside the executable and loads it from
// there) and hands it to shared/native/load.ts before any program module is evaluated.
//
// Build identity: the sha256 of bun's version, this script, the shim and every file the executable
// bundles (as esbuild lists them), cut to 16 hex digits, is compiled in (FLANNEL_TS_BUILD) and
// appended as the file's last line,
// `// flannel-ts build exe-<id>`, after the ELF image, where bun's loader never looks (it finds its
// payload in the .bun section): shared/cni/invoke.ts reads that line of a delegate found on CNI_PATH
// (one small pread) to decide whether it may run it in-process.
//
// An executable already carrying the id of the current sources is not rebuilt (the integration tests
// call the build in every file; a compile takes seconds). Every output is written under a temporary
// name and renamed into place: a test or runtime exec'ing one never sees half a file, an executable
// running while it is rebuilt keeps its old inode, and concurrent builds each work in their own dir.
//
//   node scripts/build-exe.mjs [--force] [flannel-cni] [flanneld]    (default: both)
// (flannelctl is a name of flanneld: `build-exe.mjs flannelctl` builds flanneld)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { build as esbuild } from 'esbuild';
import { chmodSync, closeSync, existsSync, fstatSync, linkSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'exe');
// The entry and the shim are bundled under their paths, which end up in the executable: a fixed dir
// (files replaced atomically, the same bytes whoever writes them) keeps the build reproducible; bun's
// output goes to a dir of this process (its dir does not change the bytes, only its name does).
const src = join(root, 'dist', '.exe-build', 'src');
const work = join(root, 'dist', '.exe-build', `out-${process.pid}`);
const BUN = join(root, 'node_modules', '.bin', 'bun');
/** The names cmd/flannel-cni.ts answers to (its PROGRAMS), linked to dist/exe/flannel-cni. */
const CNI_NAMES = ['flannel', 'bridge', 'host-local', 'loopback', 'cnitool', 'install-cni'];

/** executable → its program module (with `call`: the export to call with the build id) and its other names */
const EXES = {
  'flannel-cni': { entry: 'cmd/flannel-cni.ts', call: 'main', links: CNI_NAMES },
  flanneld: { entry: 'cmd/flanneld.ts', call: 'main', links: ['flannelctl'] },
};
/** What every build id covers besides the sources the executable bundles: the shim and this script. */
const ALWAYS_HASHED = ['shared/native/shim.c', 'shared/native/build.mjs', 'shared/native/load.ts', 'scripts/build-exe.mjs'];
const BUILD_LINE = '// flannel-ts build ';

function bunVersion() {
  const r = spawnSync(BUN, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${BUN} does not run (npm ci installs it): ${r.stderr || r.error}`);
  return r.stdout.trim();
}

/**
 * The build id of one executable: the sha256 of `salt` and of every file its bundle is made of (esbuild
 * lists them: a metafile of the same entry, about 0.3 s, nothing written), cut to 16 hex digits. Only
 * what goes into the file counts, so a change elsewhere in the tree rebuilds nothing.
 */
async function buildId(exe, salt) {
  const r = await esbuild({
    entryPoints: [join(root, exe.entry)],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'silent',
    loader: { '.node': 'empty' },
  });
  const files = [...new Set([...Object.keys(r.metafile.inputs), ...ALWAYS_HASHED])].sort();
  const h = createHash('sha256').update(`${salt}\n`);
  for (const f of files) if (existsSync(join(root, f))) h.update(`${f}\n`).update(readFileSync(join(root, f)));
  return `exe-${h.digest('hex').slice(0, 16)}`;
}

/** The build line at the end of an executable we built (shared/cni/invoke.ts reads it the same way). */
function trailerOf(file) {
  let fd;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const tail = Buffer.alloc(Math.min(128, size));
    readSync(fd, tail, 0, tail.length, size - tail.length);
    const text = tail.toString('latin1');
    const line = text.slice(text.lastIndexOf('\n', text.length - 2) + 1, -1);
    return line.startsWith(BUILD_LINE) ? line : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The native shim, built once per run; undefined without a compiler (the programs fall back). */
function buildAddon() {
  const script = join(root, 'shared', 'native', 'build.mjs');
  if (!existsSync(script) || !existsSync(join(root, 'shared', 'native', 'load.ts'))) return undefined;
  // built in this process's dir, then renamed into the fixed one: never a stale or half-written shim
  const built = join(work, 'flannel.node');
  spawnSync(process.execPath, [script, built], { stdio: 'inherit' });
  if (!existsSync(built)) return undefined;
  const out = join(src, 'flannel.node');
  renameSync(built, out);
  return out;
}

/**
 * The entry bun compiles: hand the embedded shim over, then start the program. CommonJS (no top-level
 * await; the program module is imported dynamically, so it is evaluated after the hand-over): it starts
 * about 10% faster than the same entry as ESM. A shim that does not load (bun writes an embedded .node
 * file to the temp dir to dlopen it: a read-only /tmp, a noexec mount) is no reason to fail: the
 * programs fall back to iproute2 and flock(1), and shared/native/load.ts says why.
 */
function entrySource(exe, addon) {
  const lines = [];
  if (addon !== undefined) {
    lines.push(`import { provideNativeAddon } from ${JSON.stringify(join(root, 'shared/native/load.ts'))};`);
    lines.push(`try {`, `  provideNativeAddon(require(${JSON.stringify(addon)}));`, `} catch {}`);
  }
  const then = exe.call !== undefined ? `.then((m) => m.${exe.call}(FLANNEL_TS_BUILD))` : '';
  lines.push(`void import(${JSON.stringify(join(root, exe.entry))})${then};`);
  return `${lines.join('\n')}\n`;
}

function replaceAtomically(tmp, target) {
  chmodSync(tmp, 0o755);
  renameSync(tmp, target);
}

function compile(name, id, addon) {
  const exe = EXES[name];
  const entry = join(src, `${name}.entry.ts`);
  writeFileSync(`${entry}.${process.pid}.tmp`, entrySource(exe, addon));
  renameSync(`${entry}.${process.pid}.tmp`, entry);
  const target = join(outDir, name);
  // compiled under its final name (in this build's own dir, on the same filesystem as dist/exe): bun
  // names the entry /$bunfs/root/<name>, which log lines show as their file (flanneld:1234)
  const tmp = join(work, name);
  const t0 = Date.now();
  const r = spawnSync(
    BUN,
    ['build', '--compile', '--bytecode', '--format=cjs', '--target=bun', `--define`, `FLANNEL_TS_BUILD=${JSON.stringify(id)}`, entry, '--outfile', tmp],
    { cwd: root, encoding: 'utf8', env: { ...process.env, BUN_RUNTIME_TRANSPILER_CACHE_PATH: '0' } },
  );
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`bun build ${name} failed:\n${r.stdout}${r.stderr}`);
  }
  // The image and its build line are written again in ONE write: the page cache then holds the file
  // in large folios, as after a read from disk at boot. As bun leaves it (many small writes, then the
  // appended line) every start of a plugin cost ~3 ms more here in page faults (cni-latency, same
  // bytes, same fs: 36.5 vs 33.3 ms).
  const image = Buffer.concat([readFileSync(tmp), Buffer.from(`\n${BUILD_LINE}${id}\n`)]);
  rmSync(tmp);
  writeFileSync(tmp, image);
  replaceAtomically(tmp, target);
  // each name: a hard link made under a temporary name, renamed over the old one
  for (const link of exe.links) {
    const ltmp = join(outDir, `.${link}.${process.pid}.tmp`);
    rmSync(ltmp, { force: true });
    linkSync(target, ltmp);
    renameSync(ltmp, join(outDir, link));
  }
  const mib = (statSync(target).size / 2 ** 20).toFixed(1);
  console.error(`build-exe: dist/exe/${name} (${mib} MiB, ${id}, ${Date.now() - t0} ms)${exe.links.length > 0 ? ` + links ${exe.links.join(' ')}` : ''}`);
}

const args = process.argv.slice(2);
const force = args.includes('--force');
/** a link's name → the executable it is a name of (flannelctl → flanneld) */
const ownerOf = (a) => Object.keys(EXES).find((n) => n === a || EXES[n].links.includes(a)) ?? a;
const asked = [...new Set(args.filter((a) => a !== '--force').map(ownerOf))];
for (const a of asked) if (!(a in EXES)) {
  console.error(`usage: build-exe.mjs [--force] [${Object.keys(EXES).join('] [')}]`);
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const version = bunVersion();
const names = asked.length > 0 ? asked : Object.keys(EXES);
// the shim's presence is part of the id: a build without a C compiler is another build
const hasCompiler = ['cc', 'gcc', 'clang'].some((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
const ids = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await buildId(EXES[n], `bun ${version} cc ${hasCompiler}`)])));
const stale = names.filter((n) => force || trailerOf(join(outDir, n)) !== `${BUILD_LINE}${ids[n]}` || EXES[n].links.some((l) => !sameFile(join(outDir, l), join(outDir, n))));
let failed = 0;
if (stale.length > 0) {
  mkdirSync(work, { recursive: true });
  mkdirSync(src, { recursive: true });
  try {
    const addon = buildAddon();
    for (const name of stale) {
      try {
        compile(name, ids[name], addon);
      } catch (err) {
        failed++;
        console.error(`build-exe ${name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
if (failed > 0) process.exitCode = 1;

function sameFile(a, b) {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}
