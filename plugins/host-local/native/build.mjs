#!/usr/bin/env node
// Superseded by shared/native/build.mjs (the one native shim, flannel.node, which also has flock):
// kept only until scripts/build.mjs calls that one. Builds the shim as <outfile> (the flock.node an
// older loader looks for) and as flannel.node next to it.
// Usage: node plugins/host-local/native/build.mjs [outfile]
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const out = process.argv[2] ?? join(root, 'dist', 'bin', 'flock.node');
const build = join(root, 'shared', 'native', 'build.mjs');
for (const file of [join(dirname(out), 'flannel.node'), out]) spawnSync(process.execPath, [build, file], { stdio: 'inherit' });
