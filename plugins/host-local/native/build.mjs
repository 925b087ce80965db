#!/usr/bin/env node
// Superseded by shared/native/build.mjs (the one native shim, flannel.node, which also has flock):
// kept only while scripts/build.mjs still asks for dist/bin/flock.node. Builds the shim under that
// name (shared/fs/flock.ts still looks for a flock.node next to the executable, e.g. where
// install-cni copied one).
// Usage: node plugins/host-local/native/build.mjs [outfile]
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const out = process.argv[2] ?? join(root, 'dist', 'bin', 'flock.node');
spawnSync(process.execPath, [join(root, 'shared', 'native', 'build.mjs'), out], { stdio: 'inherit' });
