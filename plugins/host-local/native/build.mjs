#!/usr/bin/env node
// Builds the optional flock(2) addon into dist/bin/flock.node, next to the host-local executable,
// with the system C compiler and the Node headers. Without a compiler or headers it prints why and
// exits 0: host-local then locks through flock(1) (util-linux), which is correct, only ~3 ms slower.
// Usage: node plugins/host-local/native/build.mjs [outfile]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const out = process.argv[2] ?? join(root, 'dist', 'bin', 'flock.node');

const includeDirs = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
const include = includeDirs.find((d) => existsSync(join(d, 'node_api.h')));
const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);

if (include === undefined || cc === undefined) {
  console.error(`flock.node not built (${include === undefined ? 'no node_api.h' : 'no C compiler'}): host-local will use flock(1)`);
} else {
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync(cc, ['-O2', '-shared', '-fPIC', '-Wall', '-Werror', `-I${include}`, join(here, 'flock.c'), '-o', tmp], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(`flock.node not built (${cc} failed): host-local will use flock(1)\n${r.stderr}`);
  } else {
    renameSync(tmp, out); // atomic: a plugin running concurrently never loads a half-written file
  }
}
