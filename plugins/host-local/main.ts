// host-local entry: wires the disk store (with the fastest flock available) and the real process to runPlugin.
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runPlugin } from '../../shared/cni/skel.js';
import { DiskStore } from './disk-store.js';
import { type FlockFn, nativeFlock, utilFlock } from './file-lock.js';
import { pathError } from './go-fs.js';
import { ABOUT, hostLocal } from './host-local.js';

let flock: FlockFn | undefined;
const lazyFlock: FlockFn = (fd) => {
  flock ??= nativeFlock(join(dirname(realpathSync(process.argv[1] ?? '.')), 'flock.node')) ?? utilFlock();
  flock(fd);
};

/** os.ReadFile, with Go's error text (`open <path>: no such file or directory`). */
function readFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw pathError((err as NodeJS.ErrnoException).code === 'EISDIR' ? 'read' : 'open', path, err);
  }
}

void runPlugin(
  hostLocal({
    openStore: (network, dataDir) => DiskStore.open(network, dataDir, lazyFlock),
    readFile,
    log: (msg) => process.stderr.write(`${new Date().toISOString().replace('T', ' ').slice(0, 19).replaceAll('-', '/')} ${msg}\n`),
  }),
  { about: ABOUT },
).then((code) => {
  process.exitCode = code;
});
