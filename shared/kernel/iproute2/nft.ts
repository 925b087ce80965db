// Nft over the nft binary: ONE `nft -j '<json>'` per transaction, one exec. Not `nft -j -f -`: nft
// 1.0.6 opens /dev/stdin, which fails with ENXIO on the socket Node gives a child as stdin (go-nft
// writes a temp file); the JSON of one spoof-check attachment is ~1 KiB, far below the 128 KiB limit
// of one argument. Inside a network namespace through nsenter when asked.
import { isNotFound, KernelError } from '../errors.js';
import type { Nft, NftCommand, NftFamily, NftTableContents, NftChain, NftRule, NftTable } from '../nft.js';
import { spawnExec, ToolRunner, type Exec } from './exec.js';

/** nftables in this process's network namespace, or inside the one at `netns`. */
export function createNft(o?: { netns?: string; exec?: Exec }): Nft {
  return new ExecNft(new ToolRunner(o?.netns, o?.exec ?? spawnExec));
}

class ExecNft implements Nft {
  constructor(private readonly runner: ToolRunner) {}

  private run(args: readonly string[]): Promise<string> {
    return this.runner.run('nft', args);
  }

  async apply(cmds: readonly NftCommand[]): Promise<void> {
    if (cmds.length === 0) return;
    try {
      await this.run(['-j', JSON.stringify({ nftables: cmds })]);
    } catch (err) {
      // the message starts with the whole argv: name the transaction by its size instead
      if (!(err instanceof KernelError)) throw err;
      const argv = err.argv.join(' ');
      const reason = err.message.startsWith(`${argv}: `) ? err.message.slice(argv.length + 2) : err.message;
      throw new KernelError(`nft -j <${cmds.length} commands>: ${reason}`, { code: err.code, argv: err.argv, exitCode: err.exitCode, stderr: err.stderr, cause: err });
    }
  }

  async listTable(family: NftFamily, name: string): Promise<NftTableContents | undefined> {
    let out: string;
    try {
      out = await this.run(['-j', 'list', 'table', family, name]);
    } catch (err) {
      if (isNotFound(err)) return undefined; // "Error: No such file or directory"
      throw err;
    }
    return parseTableListing(out, family, name);
  }
}

/** The output of `nft -j list table`. */
export function parseTableListing(out: string, family: NftFamily, name: string): NftTableContents {
  const doc = JSON.parse(out) as { nftables?: Array<Record<string, unknown>> };
  const res: NftTableContents = { table: { family, name }, chains: [], rules: [] };
  for (const item of doc.nftables ?? []) {
    if ('table' in item) res.table = item.table as NftTable;
    else if ('chain' in item) res.chains.push(item.chain as NftChain);
    else if ('rule' in item) res.rules.push(item.rule as NftRule);
  }
  return res;
}

