// os.MkdirAll with Go's os.PathError wording (`mkdir /x: permission denied`), because host-local's IO
// errors reach the runtime verbatim as code-999 messages.
import { lstatSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathError } from '../../shared/go/errors.js';

function isDir(path: string, stat: typeof statSync): boolean | undefined {
  try {
    return stat(path).isDirectory();
  } catch {
    return undefined;
  }
}

/** os.MkdirAll: creates missing parents first, reports the first directory it failed to make. */
export function mkdirAll(path: string, mode: number): void {
  const exists = isDir(path, statSync);
  if (exists === true) return;
  if (exists === false) throw new Error(`mkdir ${path}: not a directory`);
  const parent = dirname(path);
  if (parent !== path) mkdirAll(parent, mode);
  try {
    mkdirSync(path, mode);
  } catch (err) {
    if (isDir(path, lstatSync) === true) return;
    throw pathError('mkdir', path, err);
  }
}
