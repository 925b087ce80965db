// Builds one directly executable file per part into dist/bin/<name>.
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
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
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
};

await mkdir(outDir, { recursive: true });
// Extensionless executables are CommonJS: say so explicitly, whatever the root package.json says.
await writeFile(join(outDir, 'package.json'), '{"type":"commonjs"}\n');
const only = process.argv.slice(2);
let failed = 0;
for (const [name, [entry, format]] of Object.entries(PARTS)) {
  if (only.length > 0 && !only.includes(name)) continue;
  if (!existsSync(join(root, entry))) continue; // part not written yet
  const outfile = join(outDir, name);
  try {
    await build({
      entryPoints: [join(root, entry)],
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format,
      banner: { js: `#!${process.execPath}` },
      minify: false,
      sourcemap: false,
      legalComments: 'none',
      logLevel: 'warning',
    });
    if (format === 'esm') {
      // The executable keeps its plain name: the ESM bundle goes to <name>.mjs behind a CJS launcher.
      const code = await readFile(outfile, 'utf8');
      await writeFile(`${outfile}.mjs`, code);
      // env -S: a shebang passes one argument; env splits it (node is still named by absolute path)
      await writeFile(outfile, `#!/usr/bin/env -S ${process.execPath} ${DAEMON_NODE_FLAGS}\nimport(require('node:path').join(__dirname, '${name}.mjs'));\n`);
    }
    await chmod(outfile, 0o755);
  } catch (err) {
    failed++;
    console.error(`build ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
// host-local's optional flock(2) addon (dist/bin/flock.node); without a compiler it falls back to flock(1).
if (only.length === 0 || only.includes('host-local')) {
  spawnSync(process.execPath, [join(root, 'plugins/host-local/native/build.mjs'), join(outDir, 'flock.node')], { stdio: 'inherit' });
}
if (failed > 0) process.exitCode = 1;
