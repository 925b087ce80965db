#!/usr/bin/env node
// Builds the native shim (shared/native/shim.c) into one N-API addon, by default dist/bin/flannel.node,
// with the system C compiler and the Node headers. Without a compiler or headers it prints why and
// exits 0: everything still works without it, only slower (the kernel through iproute2 execs, locks
// through flock(1)); see shared/native/load.ts.
// Usage: node shared/native/build.mjs [outfile]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const out = process.argv[2] ?? join(root, 'dist', 'bin', 'flannel.node');
const name = out.split('/').pop();

const includeDirs = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
const include = includeDirs.find((d) => existsSync(join(d, 'node_api.h')));
const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);

if (include === undefined || cc === undefined) {
  console.error(`${name} not built (${include === undefined ? 'no node_api.h' : 'no C compiler'}): the kernel is driven through iproute2 and locks through flock(1)`);
} else {
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  // NAPI_VERSION 8 (Node 12.22+/bun): only what the shim uses is promised, so bun's N-API can load it
  const r = spawnSync(cc, ['-O2', '-shared', '-fPIC', '-Wall', '-Werror', '-DNAPI_VERSION=8', `-I${include}`, join(here, 'shim.c'), '-o', tmp], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    console.error(`${name} not built (${cc} failed): the kernel is driven through iproute2 and locks through flock(1)\n${r.stderr}`);
  } else {
    renameSync(tmp, out); // atomic: a process running concurrently never loads a half-written file
  }
}
