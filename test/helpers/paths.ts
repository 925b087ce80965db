// Where things are, for tests that exec the built executables or scripts.
import { join, resolve } from 'node:path';

/** The repository root. */
export const ROOT = resolve(import.meta.dirname, '../..');

/** The Node-script build (`npm run build`): dist/bin/<name>, #!node bundles. */
export const NODE_BIN = join(ROOT, 'dist/bin');

/** The self-contained executables (`npm run build`, scripts/build-exe.mjs): no Node needed to run them. */
export const EXE_BIN = join(ROOT, 'dist/exe');

/** The names dist/exe has (the CNI multi-call file's links, and flanneld with its link flannelctl). */
export const EXE_NAMES: ReadonlySet<string> = new Set(['flannel', 'bridge', 'host-local', 'loopback', 'cnitool', 'install-cni', 'flanneld', 'flannelctl']);

/**
 * Which build the integration and e2e suites exec: the self-contained executables (the default, what
 * ships), or with FLANNEL_TEST_BUILD=node the Node-script build (quicker to rebuild while developing).
 */
export const TEST_BUILD: 'exe' | 'node' = process.env.FLANNEL_TEST_BUILD === 'node' ? 'node' : 'exe';

/** The directory of the built executables the suites exec (a CNI_PATH). */
export const DIST_BIN = TEST_BUILD === 'node' ? NODE_BIN : EXE_BIN;

/** Go's reference CNI plugins, where the machine has them (the side-by-side tests skip otherwise). */
export const GO_CNI_BIN = '/usr/lib/cni';

/** The path of our built executable `name` (flanneld, bridge, host-local, loopback, flannel, cnitool, ...). */
export function bin(name: string): string {
  return join(TEST_BUILD === 'exe' && EXE_NAMES.has(name) ? EXE_BIN : NODE_BIN, name);
}
