// prom-client is CommonJS: in flanneld's ESM bundle (scripts/build.mjs) its `require('util')` and
// friends go through esbuild's __require shim, which throws ("Dynamic require of "util" is not
// supported") unless a `require` is in scope when they run. This module, imported first by main.ts,
// provides one before any bundled CommonJS module initializes. (A build banner defining `require`
// would do the same for every ESM part.)
import { createRequire } from 'node:module';

const g = globalThis as { require?: NodeJS.Require };
g.require ??= createRequire(import.meta.url);
