// Builds the two forms of every part:
// - dist/exe/: the self-contained executables (scripts/build-exe.mjs: bun-compiled, no Node needed on
//   the host): what the conflists, the manifest, the systemd unit and the integration/e2e suites use;
// - dist/bin/<name>: the Node-script build below, the development convenience (fast to build,
//   readable stack traces; FLANNEL_TEST_BUILD=node runs the suites against it).
// `node scripts/build.mjs [part...] [--node-only]`: the parts asked (default all), in both forms.
//
// The Node-script build: one directly executable file per part.
//
// Plugins are exec'd once per pod operation, so their start path is hot: each is bundled by esbuild
// into a single CommonJS file (one file to read, no module resolution, CJS loads 3-5 ms faster than
// ESM on Node 20; see README "Performance"). The shebang names the absolute node binary that built
// it, because a runtime execs plugins with a bare environment whose PATH may not contain node.
// flanneld is long-lived: one ESM bundle (dependencies included, so dist/bin does not need this
// checkout's node_modules) behind a small launcher that starts node with a small young generation
// and no V8 helper threads: the daemon allocates in bursts (a lease snapshot) and then idles, and
// V8's default 16 MiB semi-spaces and worker threads keep ~30 MiB of RSS it never gives back
// (scripts/bench/leases.mjs, README "Performance").
import { build } from 'esbuild';
import { chmod, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'bin');

/** V8 flags of the long-lived daemon (see above) */
const DAEMON_NODE_FLAGS = '--max-semi-space-size=1 --single-threaded';

/** name → [entry, format] */
const PARTS = {
  'host-local': ['plugins/host-local/main.ts', 'cjs'],
  loopback: ['plugins/loopback/main.ts', 'cjs'],
  bridge: ['plugins/bridge/main.ts', 'cjs'],
  flannel: ['plugins/flannel/main.ts', 'cjs'],
  cnitool: ['scripts/cnitool/main.ts', 'cjs'],
  flanneld: ['daemon/main.ts', 'esm'],
  'install-cni': ['scripts/install-cni/main.ts', 'cjs'],
  flannelctl: ['ctl/main.ts', 'esm'],
};

/**
 * Identifies the plugin sources a bundle was built from. A plugin runs a delegate in-process only when
 * the file CNI_PATH gives for it carries the same line (shared/cni/invoke.ts): a copy of one of our
 * executables next to the Go plugins never makes the Go ones stand in for ours, or ours for theirs.
 */
async function buildId() {
  const h = createHash('sha256').update(process.version);
  const walk = async (dir) => {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.ts')) h.update(p.slice(root.length)).update(await readFile(p));
    }
  };
  for (const d of ['plugins', 'shared', 'scripts/cnitool']) await walk(join(root, d));
  return h.digest('hex').slice(0, 16);
}
const BUILD_LINE = `// flannel-ts build ${await buildId()}`;

/** Writes next to the target, then renames: a test or runtime exec'ing it never sees half a file. */
async function writeAtomic(file, text) {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await chmod(tmp, 0o755);
  await rename(tmp, file);
}

await mkdir(outDir, { recursive: true });
// Extensionless executables are CommonJS: say so explicitly, whatever the root package.json says.
await writeFile(join(outDir, 'package.json'), '{"type":"commonjs"}\n');
const nodeOnly = process.argv.includes('--node-only');
const only = process.argv.slice(2).filter((a) => a !== '--node-only');
let failed = 0;
for (const [name, [entry, format]] of Object.entries(PARTS)) {
  if (only.length > 0 && !only.includes(name)) continue;
  if (!existsSync(join(root, entry))) continue; // part not written yet
  const outfile = join(outDir, name);
  try {
    const r = await build({
      entryPoints: [join(root, entry)],
      write: false,
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format,
      // ESM parts bundle CommonJS dependencies (prom-client) whose require('util') goes through
      // esbuild's shim, which needs a `require` in scope: the banner gives the module one
      banner: { js: `#!${process.execPath}\n${BUILD_LINE}${format === 'esm' ? `\nimport { createRequire as __flannelCreateRequire } from 'node:module';\nconst require = __flannelCreateRequire(import.meta.url);` : ''}` },
      minify: false,
      sourcemap: false,
      legalComments: 'none',
      logLevel: 'warning',
    });
    const code = r.outputFiles[0].text;
    if (format === 'esm') {
      // The executable keeps its plain name: the ESM bundle goes to <name>.mjs behind a CJS launcher.
      await writeAtomic(`${outfile}.mjs`, code);
      // env -S: a shebang passes one argument; env splits it (node is still named by absolute path)
      await writeAtomic(outfile, `#!/usr/bin/env -S ${process.execPath} ${DAEMON_NODE_FLAGS}\nimport(require('node:path').join(__dirname, '${name}.mjs'));\n`);
    } else {
      await writeAtomic(outfile, code);
    }
  } catch (err) {
    failed++;
    console.error(`build ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
// The native shim (dist/bin/flannel.node: flock, netlink, setns; shared/native) and, while
// shared/fs/flock.ts still looks for it, host-local's older flock(2) addon (dist/bin/flock.node).
// Without a compiler both are skipped and the plugins fall back (iproute2 execs, flock(1)).
if (only.length === 0 || ['host-local', 'bridge', 'flannel', 'loopback', 'flanneld'].some((p) => only.includes(p))) {
  for (const [script, file] of [
    ['shared/native/build.mjs', 'flannel.node'],
    ['plugins/host-local/native/build.mjs', 'flock.node'],
  ]) {
    if (existsSync(join(root, script))) spawnSync(process.execPath, [join(root, script), join(outDir, file)], { stdio: 'inherit' });
  }
}
// The self-contained executables that carry the parts asked (build-exe skips those already up to date):
// the CNI programs are names of flannel-cni, flannelctl a name of flanneld (cmd/flanneld.ts).
const EXE_OF = { 'host-local': 'flannel-cni', loopback: 'flannel-cni', bridge: 'flannel-cni', flannel: 'flannel-cni', cnitool: 'flannel-cni', 'install-cni': 'flannel-cni', flanneld: 'flanneld', flannelctl: 'flanneld' };
const exes = [...new Set((only.length === 0 ? Object.keys(EXE_OF) : only).map((p) => EXE_OF[p]).filter(Boolean))];
if (!nodeOnly && exes.length > 0) {
  const r = spawnSync(process.execPath, [join(root, 'scripts/build-exe.mjs'), ...exes], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
if (failed > 0) process.exitCode = 1;
