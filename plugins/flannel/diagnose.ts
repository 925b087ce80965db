// What the runtime's error says when subnet.env cannot be used: where the file was expected, whether a
// flanneld runs on this node, and the first thing to try. Runs only on that error path (it scans /proc),
// never on a successful ADD.
import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

/** PIDs of processes named flanneld (the compiled executable's comm, or `node …/flanneld` in development). */
export function flanneldPids(proc = '/proc'): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync(proc);
  } catch {
    return pids;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`${proc}/${e}/cmdline`, 'latin1').split('\0').slice(0, 2);
      if (argv.some((a) => basename(a) === 'flanneld')) pids.push(Number(e));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

/** The `details` of the error a missing subnet.env gives: who should have written it, and the fix. */
export function missingSubnetEnvDetails(path: string, pids: readonly number[]): string {
  if (pids.length > 0) {
    return (
      `flanneld is running on this node (pid ${pids.join(', ')}) but ${path} is not there: it writes the file once it holds a subnet lease, ` +
      `so check its log for why it has none yet, and that its --subnet-file is ${path}`
    );
  }
  return (
    `no flanneld is running on this node, and it is what writes ${path}: start it ` +
    `(kube-flannel: kubectl -n kube-flannel get pods -o wide --field-selector spec.nodeName=<this node>, then its log; ` +
    `systemd: systemctl status flanneld, journalctl -u flanneld)`
  );
}
