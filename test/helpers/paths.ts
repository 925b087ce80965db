// Where things are, for tests that exec the built executables or scripts.
import { join, resolve } from 'node:path';

/** The repository root. */
export const ROOT = resolve(import.meta.dirname, '../..');

/** The built executables (`npm run build`). */
export const DIST_BIN = join(ROOT, 'dist/bin');

/** Go's reference CNI plugins, where the machine has them (the side-by-side tests skip otherwise). */
export const GO_CNI_BIN = '/usr/lib/cni';

/** The path of our built executable `name` (flanneld, bridge, host-local, loopback, flannel, cnitool). */
export function bin(name: string): string {
  return join(DIST_BIN, name);
}
