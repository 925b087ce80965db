// Bundles the API-server double into one file, dist/test/kube-apiserver.mjs, so the lab and benches
// can run it with plain node (no TypeScript loader here). Written next to the target, then renamed.
import { build } from 'esbuild';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = process.argv[2] ?? join(root, 'dist', 'test', 'kube-apiserver.mjs');
const r = await build({
  entryPoints: [join(root, 'test', 'kube-apiserver', 'main.ts')],
  write: false,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outfile: out,
  logLevel: 'warning',
});
await mkdir(dirname(out), { recursive: true });
const tmp = `${out}.tmp-${process.pid}`;
await writeFile(tmp, r.outputFiles[0].text);
await rename(tmp, out);
