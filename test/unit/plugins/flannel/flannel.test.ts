// The handlers through runFlannel (the skeleton) with injected deps: result re-printing, error passthrough, DEL rules.
import { describe, expect, it } from 'vitest';
import type { PluginIo } from '../../../../shared/cni/skel.js';
import { CniError } from '../../../../shared/cni/errors.js';
import type { FlannelDeps } from '../../../../plugins/flannel/flannel.js';
import { runFlannel } from '../../../../plugins/flannel/world.js';
import { parseSubnetEnv } from '../../../../plugins/flannel/subnet-env.js';
import type { Result } from '../../../../shared/cni/types.js';

const V4 = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

function fakeDeps(over: Partial<FlannelDeps> = {}) {
  const files = new Map<string, string>();
  const calls: Array<{ verb: string; type: string; conf: string }> = [];
  const locks: string[] = [];
  const deps: FlannelDeps = {
    readSubnetEnv: (p) => parseSubnetEnv(V4, p),
    lockContainer: (dir, id, create) => {
      locks.push(`lock ${dir}/${id}${create ? ' create' : ''}`);
      return { path: `${dir}/.${id}.lock`, release: (remove) => void locks.push(`release${remove ? ' remove' : ''}`) };
    },
    saveScratch: (dir, id, bytes) => void files.set(`${dir}/${id}`, bytes),
    consumeScratch: (dir, id) => {
      const bytes = files.get(`${dir}/${id}`);
      if (bytes === undefined) throw Object.assign(new Error(`open ${dir}/${id}: no such file or directory`), { code: 'ENOENT' });
      return { bytes: Buffer.from(bytes), remove: () => void files.delete(`${dir}/${id}`) };
    },
    delegateAdd: async (type, conf) => {
      calls.push({ verb: 'ADD', type, conf });
      const r: Result = { cniVersion: JSON.parse(conf).cniVersion, ips: [{ address: '10.244.1.2/24', gateway: '10.244.1.1' }] };
      return r;
    },
    delegateDel: async (type, conf) => void calls.push({ verb: 'DEL', type, conf: conf.toString() }),
    delegateStatus: async (type, conf) => void calls.push({ verb: 'STATUS', type, conf }),
    delegateGc: async (type, conf) => void calls.push({ verb: 'GC', type, conf }),
    listScratch: (dir) => [...files.keys()].filter((k) => k.startsWith(`${dir}/`)).map((k) => k.slice(dir.length + 1)),
    flanneldPids: () => [],
    writeStderr: () => {},
    ...over,
  };
  return { deps, files, calls, locks };
}

function io(cmd: string, stdin: string): PluginIo & { out: string } {
  const s = {
    env: { CNI_COMMAND: cmd, CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/bin' },
    out: '',
    readStdin: () => Buffer.from(stdin),
    writeStdout: (t: string) => void (s.out += t),
    writeStderr: () => {},
  };
  return s;
}

const CONF = (v = '0.3.1') => JSON.stringify({ cniVersion: v, name: 'cbr0', type: 'flannel', dataDir: '/d' });

describe('flannel handlers', () => {
  it('ADD saves the conf before delegating and prints the delegate result at its version', async () => {
    const f = fakeDeps();
    const s = io('ADD', CONF());
    expect(await runFlannel(s, f.deps)).toBe(0);
    expect(f.files.get('/d/c1')).toBe(f.calls[0]!.conf);
    expect(JSON.parse(s.out)).toEqual({ cniVersion: '0.3.1', ips: [{ version: '4', address: '10.244.1.2/24', gateway: '10.244.1.1' }], dns: {} });
  });

  it('a delegate CniError passes through unchanged; other failures are wrapped with "failed to delegate add"', async () => {
    const cni = fakeDeps({ delegateAdd: async () => Promise.reject(new CniError(11, 'busy', 'd')) });
    const s1 = io('ADD', CONF());
    expect(await runFlannel(s1, cni.deps)).toBe(1);
    expect(JSON.parse(s1.out)).toEqual({ code: 11, msg: 'busy', details: 'd' });
    expect(cni.files.has('/d/c1')).toBe(true); // kept for the runtime's DEL
    const plain = fakeDeps({ delegateAdd: async () => Promise.reject(new Error('failed to find plugin "bridge" in path [/bin]')) });
    const s2 = io('ADD', CONF());
    await runFlannel(s2, plain.deps);
    expect(JSON.parse(s2.out)).toEqual({ code: 999, msg: 'failed to delegate add: failed to find plugin "bridge" in path [/bin]' });
  });

  it('subnet.env errors get the operator hint', async () => {
    const f = fakeDeps({
      readSubnetEnv: () => {
        throw new Error('open /run/flannel/subnet.env: no such file or directory');
      },
    });
    const s = io('ADD', CONF());
    await runFlannel(s, f.deps);
    expect(JSON.parse(s.out)).toEqual({
      code: 999,
      msg: "failed to load flannel 'subnet.env' file: open /run/flannel/subnet.env: no such file or directory. Check the flannel pod log for this node.",
      details: expect.stringContaining('no flanneld is running on this node, and it is what writes /run/flannel/subnet.env'),
    });
    expect(f.files.size).toBe(0);
  });

  it('DEL replays the saved bytes verbatim and removes the file; a second DEL is a no-op', async () => {
    const f = fakeDeps();
    await runFlannel(io('ADD', CONF()), f.deps);
    const saved = f.files.get('/d/c1');
    expect(await runFlannel(io('DEL', CONF('1.0.0')), f.deps)).toBe(0);
    expect(f.calls[1]).toEqual({ verb: 'DEL', type: 'bridge', conf: saved });
    expect(f.files.size).toBe(0);
    expect(await runFlannel(io('DEL', CONF()), f.deps)).toBe(0);
    expect(f.calls).toHaveLength(2);
  });

  it('DEL of a corrupt file succeeds without calling the delegate and keeps the file', async () => {
    const f = fakeDeps();
    f.files.set('/d/c1', '');
    expect(await runFlannel(io('DEL', CONF()), f.deps)).toBe(0);
    expect(f.calls).toHaveLength(0);
    expect(f.files.has('/d/c1')).toBe(true);
  });

  it('DEL removes the file even when the delegate fails, and reports the failure', async () => {
    const f = fakeDeps({ delegateDel: async () => Promise.reject(new CniError(999, 'iptables failed')) });
    f.files.set('/d/c1', '{"type":"bridge"}');
    const s = io('DEL', CONF());
    expect(await runFlannel(s, f.deps)).toBe(1);
    expect(JSON.parse(s.out).msg).toBe('iptables failed');
    expect(f.files.size).toBe(0);
  });

  it('ADD saves and delegates under the container lock; DEL replays under it and then removes the lock file', async () => {
    const f = fakeDeps({
      delegateAdd: async (type, conf) => {
        f.locks.push('delegate ADD');
        return { cniVersion: JSON.parse(conf).cniVersion, ips: [] };
      },
      delegateDel: async () => void f.locks.push('delegate DEL'),
    });
    await runFlannel(io('ADD', CONF()), f.deps);
    await runFlannel(io('DEL', CONF()), f.deps);
    expect(f.locks).toEqual(['lock /d/c1 create', 'delegate ADD', 'release', 'lock /d/c1', 'delegate DEL', 'release remove']);
  });

  it('DEL whose dataDir does not exist (no lock to take) does nothing', async () => {
    const f = fakeDeps({ lockContainer: () => undefined });
    expect(await runFlannel(io('DEL', CONF()), f.deps)).toBe(0);
    expect(f.calls).toHaveLength(0);
  });

  it.each([
    ['delegate.type "flannel"', { delegate: { type: 'flannel' } }, `'delegate' type "flannel" would make the flannel plugin call itself`],
    ['delegate.type = the config type', { type: 'flannel-ts', delegate: { type: 'flannel-ts' } }, `'delegate' type "flannel-ts" would make the flannel plugin call itself`],
    ['ipam.type "flannel"', { ipam: { type: 'flannel' } }, `'ipam' type "flannel" would make the flannel plugin call itself through its delegate`],
  ])('ADD with %s is refused (code 7) before anything is saved or run', async (_name, extra, msg) => {
    const f = fakeDeps();
    const s = io('ADD', JSON.stringify({ ...JSON.parse(CONF('1.0.0')), ...extra }));
    expect(await runFlannel(s, f.deps)).toBe(1);
    const out = JSON.parse(s.out);
    expect(out.code).toBe(7);
    expect(out.msg).toContain(msg);
    expect(f.calls).toHaveLength(0);
    expect(f.files.size).toBe(0);
    expect(f.locks).toHaveLength(0);
  });

  it('DEL of a saved config naming flannel (as a Go ADD may have saved) does not run itself again', async () => {
    const f = fakeDeps();
    f.files.set('/d/c1', '{"type":"flannel","name":"cbr0"}');
    expect(await runFlannel(io('DEL', CONF()), f.deps)).toBe(0);
    expect(f.calls).toHaveLength(0);
    expect(f.files.has('/d/c1')).toBe(true); // kept, as a corrupt file is
  });

  it('CHECK, STATUS and GC succeed with no output when all is well; only CHECK asks no delegate (as the reference)', async () => {
    const f = fakeDeps();
    for (const cmd of ['CHECK', 'STATUS', 'GC']) {
      const s = io(cmd, CONF('1.1.0'));
      expect(await runFlannel(s, f.deps)).toBe(0);
      expect(s.out).toBe('');
    }
    expect(f.calls.map((c) => c.verb)).toEqual(['STATUS', 'GC']);
  });

  describe('STATUS and GC (CNI 1.1)', () => {
    const CONF11 = JSON.stringify({ cniVersion: '1.1.0', name: 'cbr0', type: 'flannel', dataDir: '/d' });
    const gcConf = (valid: Array<{ containerID: string; ifname: string }>) => JSON.stringify({ ...JSON.parse(CONF11), 'cni.dev/valid-attachments': valid });

    it('STATUS: subnet.env missing is code 50 naming the file, whether flanneld runs, and the fix', async () => {
      const missing = () => {
        throw Object.assign(new Error('open /run/flannel/subnet.env: no such file or directory'), { cause: { code: 'ENOENT' } });
      };
      const down = fakeDeps({ readSubnetEnv: missing });
      const s1 = io('STATUS', CONF11);
      expect(await runFlannel(s1, down.deps)).toBe(1);
      const e1 = JSON.parse(s1.out) as { code: number; msg: string; details: string };
      expect(e1.code).toBe(50);
      expect(e1.msg).toContain('open /run/flannel/subnet.env: no such file or directory');
      expect(e1.details).toMatch(/^no flanneld is running on this node.*systemctl status flanneld/);
      const starting = fakeDeps({ readSubnetEnv: missing, flanneldPids: () => [4242] });
      const s2 = io('STATUS', CONF11);
      await runFlannel(s2, starting.deps);
      expect(JSON.parse(s2.out).details).toMatch(/^flanneld is running on this node \(pid 4242\) but .* check its log/);
      expect(down.calls).toEqual([]);
    });

    it('STATUS: an incomplete subnet.env is code 50 too; a complete one asks the delegate', async () => {
      const partial = fakeDeps({ readSubnetEnv: () => { throw new Error('/run/flannel/subnet.env is missing FLANNEL_MTU'); } });
      const s1 = io('STATUS', CONF11);
      await runFlannel(s1, partial.deps);
      expect(JSON.parse(s1.out)).toMatchObject({ code: 50, msg: expect.stringContaining('is missing FLANNEL_MTU') });
      const ok = fakeDeps();
      const s2 = io('STATUS', CONF11);
      expect(await runFlannel(s2, ok.deps)).toBe(0);
      expect(s2.out).toBe('');
      expect(ok.calls.map((c) => `${c.verb} ${c.type}`)).toEqual(['STATUS bridge']);
    });

    it('GC: saved configs of containers with no valid attachment go; the valid attachments reach the delegate', async () => {
      const f = fakeDeps();
      f.files.set('/d/live', '{"type":"bridge"}');
      f.files.set('/d/leaked', '{"type":"bridge"}');
      const s = io('GC', gcConf([{ containerID: 'live', ifname: 'eth0' }]));
      expect(await runFlannel(s, f.deps)).toBe(0);
      expect([...f.files.keys()]).toEqual(['/d/live']);
      expect(f.locks).toEqual(['lock /d/leaked', 'release remove']);
      const gc = f.calls.find((c) => c.verb === 'GC')!;
      expect(gc.type).toBe('bridge');
      expect(JSON.parse(gc.conf)['cni.dev/valid-attachments']).toEqual([{ containerID: 'live', ifname: 'eth0' }]);
      expect(JSON.parse(gc.conf).ipam.type).toBe('host-local');
    });

    it('GC without subnet.env still cleans the dataDir and says why the delegate was not asked', async () => {
      const f = fakeDeps({ readSubnetEnv: () => { throw new Error('open /x: no such file or directory'); } });
      f.files.set('/d/leaked', '{}');
      const s = io('GC', gcConf([]));
      expect(await runFlannel(s, f.deps)).toBe(1);
      expect(f.files.size).toBe(0);
      expect(JSON.parse(s.out).msg).toMatch(/^GC not passed to the delegate: failed to load flannel 'subnet.env' file/);
    });
  });
});
