// Delegation loops (shared/cni/invoke.ts): a delegate that is already running in this call (the caller
// itself included) or a chain MAX_DELEGATION_DEPTH deep is refused with code 7 before anything runs;
// the chain reaches exec'd and in-process delegates in CNI_TS_DELEGATION_CHAIN.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CniError } from '../../../../shared/cni/errors.js';
import { CHAIN_ENV, MAX_DELEGATION_DEPTH, delegateAdd, delegateDel, extendChain, registerInProcess } from '../../../../shared/cni/invoke.js';
import { runPlugin, type PluginIo } from '../../../../shared/cni/skel.js';

let dir: string;
const savedArgv1 = process.argv[1] ?? '';
const BUILD = '// flannel-ts build 00000000deadbeef';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'invoke-chain-'));
  // "loopy": ours, delegates to the type named by its stdin's ipam.type (like bridge does)
  writeFileSync(join(dir, 'loopy'), `#!${process.execPath}\n${BUILD}\n`);
  // "echo": an exec'd plugin that prints the chain it was handed as its result's dns domain
  writeFileSync(
    join(dir, 'echo'),
    `#!${process.execPath}\n// someone else's\nprocess.stdin.resume().on('end', () => console.log(JSON.stringify({ cniVersion: '1.0.0', dns: { domain: process.env.${CHAIN_ENV} ?? 'none' } })));\n`,
  );
  chmodSync(join(dir, 'echo'), 0o755);
  process.argv[1] = join(dir, 'loopy');
  registerInProcess('loopy', (io: PluginIo) =>
    runPlugin(
      {
        add: async (a) => {
          const ipam = (JSON.parse(a.stdinData.toString()) as { ipam: { type: string } }).ipam.type;
          return delegateAdd(ipam, a.stdinData, '1.0.0', { env: io.env, writeStderr: () => {} });
        },
        del: async (a) => {
          const ipam = (JSON.parse(a.stdinData.toString()) as { ipam: { type: string } }).ipam.type;
          await delegateDel(ipam, a.stdinData, { env: io.env });
        },
      },
      { about: 'loopy' },
      io,
    ),
  );
});

afterAll(() => {
  process.argv[1] = savedArgv1;
  rmSync(dir, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({
  CNI_PATH: dir,
  CNI_CONTAINERID: 'c',
  CNI_NETNS: '/var/run/netns/x',
  CNI_IFNAME: 'eth0',
  ...extra,
});
const conf = (ipamType: string) => JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'loopy', ipam: { type: ipamType } });

async function refusal(p: Promise<unknown>): Promise<CniError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CniError);
  return err as CniError;
}

describe('delegation loops', () => {
  it('the outermost plugin delegating to itself is refused (code 7) before anything runs', async () => {
    for (const call of [() => delegateAdd('loopy', conf('loopy'), '1.0.0', { env: env() }), () => delegateDel('loopy', conf('loopy'), { env: env() })]) {
      const err = await refusal(call());
      expect(err.code).toBe(7);
      expect(err.message).toBe(
        'refusing to delegate to plugin "loopy": it is already running in this call (loopy → loopy); check the delegate types in the network config (e.g. ipam.type)',
      );
    }
  });

  it('a loop through an in-process delegate ends at the second level with one error', async () => {
    // the caller is a meta plugin further up (the chain it hands us); loopy runs in process and would
    // run itself again
    const err = await refusal(delegateAdd('loopy', conf('loopy'), '1.0.0', { env: env({ [CHAIN_ENV]: '/opt/cni/bin/meta' }) }));
    expect(err.code).toBe(7);
    expect(err.message).toContain('(meta → loopy → loopy)');
  });

  it('an exec\'d delegate is handed the chain (caller, then itself)', async () => {
    const r = await delegateAdd('echo', conf('echo'), '1.0.0', { env: env() });
    expect(r.dns?.domain).toBe(`${join(dir, 'loopy')}:${join(dir, 'echo')}`);
  });

  it('a chain MAX_DELEGATION_DEPTH deep is refused', () => {
    const deep = Array.from({ length: MAX_DELEGATION_DEPTH }, (_, i) => `/p/meta${i}`).join(':');
    expect(() => extendChain('echo', join(dir, 'echo'), { [CHAIN_ENV]: deep })).toThrow(/delegation depth limit \(8\) reached/);
    const shallow = Array.from({ length: MAX_DELEGATION_DEPTH - 1 }, (_, i) => `/p/meta${i}`).join(':');
    expect(extendChain('echo', join(dir, 'echo'), { [CHAIN_ENV]: shallow })).toBe(`${shallow}:${join(dir, 'echo')}`);
  });

  it('a normal chain (flannel → bridge → host-local) passes', () => {
    expect(extendChain('host-local', '/opt/cni/bin/host-local', { [CHAIN_ENV]: '/opt/cni/bin/flannel:/opt/cni/bin/bridge' })).toBe(
      '/opt/cni/bin/flannel:/opt/cni/bin/bridge:/opt/cni/bin/host-local',
    );
    expect(() => extendChain('flannel', '/opt/cni/bin/flannel', { [CHAIN_ENV]: '/opt/cni/bin/flannel:/opt/cni/bin/bridge' })).toThrow(
      'refusing to delegate to plugin "flannel": it is already running in this call (flannel → bridge → flannel)',
    );
  });
});
