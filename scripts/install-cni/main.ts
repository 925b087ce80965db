// install-cni entry point (dist/bin/install-cni): parse, install, one log line per file.
// Exit status: 0 done (installed or unchanged), 1 install failed, 2 bad command line.
import { dirname } from 'node:path';
import { realpathSync } from 'node:fs';
import { parseArgs, USAGE, UsageError } from './args.js';
import { install, InstallError } from './install.js';

async function main(): Promise<number> {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2), dirname(realpathSync(process.argv[1]!)));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`install-cni: ${err.message}\n${USAGE}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    for (const f of await install(opts)) process.stdout.write(`install-cni: ${f.outcome} ${f.path}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`install-cni: ${err instanceof InstallError ? err.message : String((err as Error).stack ?? err)}\n`);
    return 1;
  }
}

main().then((code) => (process.exitCode = code));
