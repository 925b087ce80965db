// The built flanneld when the data path its backend needs is missing: one line that says what to
// install or load, and exit 1, never a running daemon without a fabric.
// - wireguard: the kernel has no WireGuard (true here) and no wireguard-go (hidden with
//   WG_QUICK_USERSPACE_IMPLEMENTATION pointing nowhere);
// - ipip: the kernel has no IPIP (true here: no CONFIG_NET_IPIP; skipped where the module exists).
// In a namespace of our own with its own etcd; a private --data-dir.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasEtcd, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { buildFlanneld, FLANNELD } from './daemon-harness.js';

describe.skipIf(!hasEtcd || !canUseNetns)('flanneld (built) without its backend data path', () => {
  let ns: Netns;
  let etcd: TestEtcd;
  let dir: string;

  beforeAll(async () => {
    buildFlanneld();
    ns = createNetns('fwg');
    ns.exec(['ip', 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext1']);
    ns.exec(['ip', 'addr', 'add', '10.50.0.2/24', 'dev', 'ext0']);
    ns.exec(['ip', 'link', 'set', 'ext0', 'up']);
    ns.exec(['ip', 'link', 'set', 'ext1', 'up']);
    etcd = await startEtcd({ netns: ns.name });
    dir = mkdtempSync(join(tmpdir(), `flanneld-wg-test-${process.pid}-`));
  });
  afterAll(async () => {
    await etcd?.stop();
    ns?.delete();
    cleanupNetns();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const runToExit = async (config: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> => {
    etcd.ctl(['put', '/coreos.com/network/config', config]);
    const data = mkdtempSync(join(dir, 'data-'));
    const proc: ChildProcess = spawn(
      'ip',
      ['netns', 'exec', ns.name, FLANNELD, '--etcd-endpoints', etcd.endpoint, '--iface', 'ext0', '--subnet-file', join(data, 'subnet.env'), '--data-dir', data],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } },
    );
    let stderr = '';
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    clearTimeout(timer);
    return { code, stderr };
  };

  it('wireguard with neither kernel WireGuard nor wireguard-go: says what to install, exits 1, leaves no device', async () => {
    const r = await runToExit('{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}', { WG_QUICK_USERSPACE_IMPLEMENTATION: '/nonexistent/wireguard-go' });
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter((l) => l.includes('Error registering network'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/WireGuard is not available: the kernel has no WireGuard \(.*\) and \/nonexistent\/wireguard-go is not installed; install wireguard-go/);
    const links = ns.exec(['ip', '-o', 'link', 'show']).stdout;
    expect(links).toContain('ext0');
    expect(links).not.toContain('flannel-wg');
  });

  it.skipIf(existsSync('/sys/module/ipip'))('ipip on a kernel without IPIP: says so in one line, exits 1', async () => {
    const r = await runToExit('{"Network":"10.244.0.0/16","Backend":{"Type":"ipip"}}', {});
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter((l) => l.includes('Error registering network'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/this kernel has no IPIP support \(.*\): load the ipip module or use another backend/);
  });
});
