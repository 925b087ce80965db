// flannelctl is bundled as ESM (scripts/build.mjs), where CommonJS dependencies bundled in (prom-client,
// reached through the daemon modules it shares) call require() for Node built-ins, and esbuild's shim
// throws "Dynamic require of "util" is not supported" unless a `require` exists when they load. main.ts
// imports this module first, so the global is there before any dependency is evaluated. Bun and a
// CommonJS build have their own require, which is left alone.
import { createRequire } from 'node:module';

const g = globalThis as { require?: NodeJS.Require };
if (typeof g.require === 'undefined') g.require = createRequire(import.meta.url);
