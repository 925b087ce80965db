// flannelctl: leases, doctor, cleanup (cli.ts) against the real node: the iproute2 kernel adapter,
// iptables/nft in this process's network namespace, the datastore the flags name.
import { createIptables } from '../shared/kernel/iproute2/iptables.js';
import { createKernel } from '../shared/kernel/iproute2/kernel.js';
import { createNft } from '../shared/kernel/iproute2/nft.js';
import { runCtl } from './cli.js';

runCtl({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  kernel: () => createKernel(),
  iptables: (family) => createIptables(family),
  nft: () => createNft(),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`flannelctl: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
