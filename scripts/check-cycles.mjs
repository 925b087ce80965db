#!/usr/bin/env node
// Import cycles among our TypeScript files: a DFS over relative imports (`import`/`export ... from`,
// `import type` included, since a type cycle is still two modules that cannot be read apart, and
// dynamic `import('./x.js')`). Prints each cycle once (`a.ts → b.ts → a.ts`) and exits 1; prints
// nothing and exits 0 on a clean tree.   node scripts/check-cycles.mjs [dirs...]
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
const dirs = process.argv.length > 2 ? process.argv.slice(2) : ['daemon', 'plugins', 'shared', 'scripts', 'test'];
const files = (d) => readdirSync(d).flatMap((n) => (n === 'node_modules' ? [] : statSync(join(d, n)).isDirectory() ? files(join(d, n)) : n.endsWith('.ts') ? [join(d, n)] : []));
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function edges(file) {
  const out = [];
  for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    const to = resolve(dirname(file), (m[1] ?? m[2]).replace(/\.js$/, '.ts'));
    if (to.endsWith('.ts')) out.push(to);
  }
  return out;
}

const graph = new Map(dirs.flatMap((d) => files(resolve(ROOT, d))).map((f) => [f, edges(f)]));
const state = new Map(); // undefined: unseen, 1: on the stack, 2: done
const stack = [];
const seen = new Set();
let found = 0;

function visit(f) {
  state.set(f, 1);
  stack.push(f);
  for (const g of graph.get(f) ?? []) {
    if (state.get(g) === 1) {
      const cycle = stack.slice(stack.indexOf(g)).concat(g).map((x) => relative(ROOT, x));
      const key = [...cycle.slice(0, -1)].sort().join(' ');
      if (!seen.has(key)) {
        seen.add(key);
        found++;
        console.log(cycle.join(' → '));
      }
    } else if (state.get(g) === undefined && graph.has(g)) visit(g);
  }
  stack.pop();
  state.set(f, 2);
}

for (const f of [...graph.keys()].sort()) if (state.get(f) === undefined) visit(f);
process.exitCode = found > 0 ? 1 : 0;
