// macspoofchk: the spoof-check transactions (shared/link/spoof-check.ts), FakeNft and the nft exec
// adapter (shared/kernel) and the bridge's ADD/DEL/CHECK on FakeKernel + FakeNft. The same against the Go
// reference on a real kernel: test/integration/bridge/macspoofchk.test.ts.
import { describe, expect, it } from 'vitest';
import { cmdAdd, cmdDel } from '../../../../plugins/bridge/bridge.js';
import { cmdCheck } from '../../../../plugins/bridge/check.js';
import { KernelError } from '../../../../shared/kernel/errors.js';
import { FakeKernel, withVethOperstate } from '../../../../shared/kernel/fake/fake-kernel.js';
import type { NftRule, NftTableContents } from '../../../../shared/kernel/nft.js';
import { createNft, parseTableListing } from '../../../../shared/kernel/iproute2/nft.js';
import { FakeNft } from '../../../../shared/kernel/fake/fake-nft.js';
import { spoofCheckSetup, spoofCheckTeardown, SpoofChecker } from '../../../../shared/link/spoof-check.js';
import type { Result } from '../../../../shared/cni/types.js';
import { fakeBridge, POD } from './fake-bridge.js';

const BR = { family: 'bridge', table: 'nat' } as const;

/** What Go 1.1.1 left in `table bridge nat` for container `ctr-1`, ifname eth0 (nft -j list table, captured). */
const GO_LISTING = JSON.stringify({
  nftables: [
    { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
    { table: { family: 'bridge', name: 'nat', handle: 1 } },
    { chain: { ...BR, name: 'PREROUTING', handle: 1, type: 'filter', hook: 'prerouting', prio: -300, policy: 'accept' } },
    { chain: { ...BR, name: 'cni-br-iface-ctr-1-eth0', handle: 2 } },
    { chain: { ...BR, name: 'cni-br-iface-ctr-1-eth0-mac', handle: 3 } },
    {
      rule: {
        ...BR,
        chain: 'PREROUTING',
        handle: 4,
        comment: 'macspoofchk-ctr-1-eth0',
        expr: [{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'vethcc7174a6' } }, { jump: { target: 'cni-br-iface-ctr-1-eth0' } }],
      },
    },
    { rule: { ...BR, chain: 'cni-br-iface-ctr-1-eth0', handle: 5, comment: 'macspoofchk-ctr-1-eth0', expr: [{ jump: { target: 'cni-br-iface-ctr-1-eth0-mac' } }] } },
    {
      rule: {
        ...BR,
        chain: 'cni-br-iface-ctr-1-eth0-mac',
        handle: 6,
        comment: 'macspoofchk-ctr-1-eth0',
        expr: [{ match: { op: '==', left: { payload: { protocol: 'ether', field: 'saddr' } }, right: 'ae:2f:ea:3a:36:c5' } }, { return: null }],
      },
    },
    { rule: { ...BR, chain: 'cni-br-iface-ctr-1-eth0-mac', handle: 7, comment: 'macspoofchk-ctr-1-eth0', expr: [{ drop: null }] } },
  ],
});

/** the rules of one attachment as nft lists them, without handles */
function expectedRules(refID: string, veth: string, mac: string): Array<Omit<NftRule, 'handle'>> {
  const iface = `cni-br-iface-${refID}`;
  const comment = `macspoofchk-${refID}`;
  return [
    { ...BR, chain: 'PREROUTING', comment, expr: [{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: veth } }, { jump: { target: iface } }] },
    { ...BR, chain: iface, comment, expr: [{ jump: { target: `${iface}-mac` } }] },
    { ...BR, chain: `${iface}-mac`, comment, expr: [{ match: { op: '==', left: { payload: { protocol: 'ether', field: 'saddr' } }, right: mac } }, { return: null }] },
    { ...BR, chain: `${iface}-mac`, comment, expr: [{ drop: null }] },
  ];
}

const withoutHandles = (t: NftTableContents | undefined) =>
  t === undefined
    ? undefined
    : {
        chains: t.chains.map(({ handle: _h, ...c }) => c),
        rules: t.rules.map(({ handle: _h, ...r }) => r),
      };

describe('nft: the spoof-check transactions', () => {
  it('setup: the table, the base chain, our two chains (flushed) and the four rules Go writes, in one transaction', () => {
    const cmds = spoofCheckSetup('vethcc7174a6', 'ae:2f:ea:3a:36:c5', 'ctr-1-eth0');
    expect(cmds.slice(0, 6)).toEqual([
      { add: { table: { family: 'bridge', name: 'nat' } } },
      { add: { chain: { ...BR, name: 'PREROUTING', type: 'filter', hook: 'prerouting', prio: -300, policy: 'accept' } } },
      { add: { chain: { ...BR, name: 'cni-br-iface-ctr-1-eth0' } } },
      { add: { chain: { ...BR, name: 'cni-br-iface-ctr-1-eth0-mac' } } },
      { flush: { chain: { ...BR, name: 'cni-br-iface-ctr-1-eth0' } } },
      { flush: { chain: { ...BR, name: 'cni-br-iface-ctr-1-eth0-mac' } } },
    ]);
    // the rules equal what Go left on the kernel, as listed
    const go = parseTableListing(GO_LISTING, 'bridge', 'nat');
    expect(cmds.slice(6)).toEqual(go.rules.map(({ handle: _h, ...r }) => ({ add: { rule: r } })));
  });

  it('parseTableListing reads nft -j list table', () => {
    const t = parseTableListing(GO_LISTING, 'bridge', 'nat');
    expect(t.table).toEqual({ family: 'bridge', name: 'nat', handle: 1 });
    expect(t.chains.map((c) => c.name)).toEqual(['PREROUTING', 'cni-br-iface-ctr-1-eth0', 'cni-br-iface-ctr-1-eth0-mac']);
    expect(t.rules.map((r) => r.handle)).toEqual([4, 5, 6, 7]);
  });

  it("teardown: our PREROUTING rules by handle, then our chains; another container's rules stay", () => {
    const t = parseTableListing(GO_LISTING, 'bridge', 'nat');
    expect(spoofCheckTeardown(t, 'ctr-1-eth0')).toEqual([
      { delete: { rule: { ...BR, chain: 'PREROUTING', handle: 4 } } },
      { delete: { chain: { ...BR, name: 'cni-br-iface-ctr-1-eth0' } } },
      { delete: { chain: { ...BR, name: 'cni-br-iface-ctr-1-eth0-mac' } } },
    ]);
    expect(spoofCheckTeardown(t, 'ctr-2-eth0')).toEqual([]);
    expect(spoofCheckTeardown(t, 'ctr-1')).toEqual([]); // a prefix of another refID is not ours
    expect(spoofCheckTeardown(undefined, 'ctr-1-eth0')).toEqual([]);
  });

  it('teardown: a rule jumping to our chain without our comment goes too (else the chain could not be deleted)', () => {
    const t = parseTableListing(GO_LISTING, 'bridge', 'nat');
    t.rules.push({ ...BR, chain: 'PREROUTING', handle: 9, expr: [{ goto: { target: 'cni-br-iface-ctr-1-eth0' } }] });
    expect(spoofCheckTeardown(t, 'ctr-1-eth0').slice(0, 2)).toEqual([
      { delete: { rule: { ...BR, chain: 'PREROUTING', handle: 4 } } },
      { delete: { rule: { ...BR, chain: 'PREROUTING', handle: 9 } } },
    ]);
  });
});

describe('FakeNft', () => {
  it('numbers chains and rules per table as nft does; a repeated setup adds one more PREROUTING jump', async () => {
    const nft = new FakeNft();
    await nft.apply(spoofCheckSetup('vethcc7174a6', 'ae:2f:ea:3a:36:c5', 'ctr-1-eth0'));
    expect(await nft.listTable('bridge', 'nat')).toEqual(parseTableListing(GO_LISTING, 'bridge', 'nat'));
    await nft.apply(spoofCheckSetup('vethcc7174a6', 'ae:2f:ea:3a:36:c5', 'ctr-1-eth0'));
    const t = await nft.listTable('bridge', 'nat');
    expect(t?.rules.map((r) => `${r.chain} ${r.handle}`)).toEqual(['PREROUTING 4', 'PREROUTING 8', 'cni-br-iface-ctr-1-eth0 9', 'cni-br-iface-ctr-1-eth0-mac 10', 'cni-br-iface-ctr-1-eth0-mac 11']);
    expect(nft.execs).toBe(4);
  });

  it('a transaction is all or nothing; errors carry nft words (ENOENT is not-found, EBUSY for a chain in use)', async () => {
    const nft = new FakeNft();
    await nft.apply(spoofCheckSetup('veth1', '02:00:00:00:00:01', 'c-eth0'));
    const before = await nft.listTable('bridge', 'nat');
    const busy = await nft.apply([{ delete: { chain: { ...BR, name: 'cni-br-iface-c-eth0' } } }]).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(KernelError);
    expect((busy as KernelError).stderr).toContain('Device or resource busy');
    const missing = await nft
      .apply([{ delete: { rule: { ...BR, chain: 'PREROUTING', handle: 4 } } }, { delete: { chain: { ...BR, name: 'nope' } } }])
      .catch((e: unknown) => e);
    expect((missing as KernelError).stderr).toContain('No such file or directory');
    expect(await nft.listTable('bridge', 'nat')).toEqual(before);
    expect(await nft.listTable('bridge', 'filter')).toBeUndefined();
    await nft.apply([]);
    expect(nft.execs).toBe(6); // setup, 2 failed applies, 3 reads; no exec for nothing
  });
});

describe('nft: the exec adapter', () => {
  it('apply is ONE `nft -j <json>` (under nsenter for a netns); nothing to do is no exec', async () => {
    const calls: Array<readonly string[]> = [];
    const nft = createNft({ netns: '/var/run/netns/h', exec: async (argv) => {
        calls.push(argv);
        return '';
      },
    });
    await nft.apply([]);
    const cmds = spoofCheckSetup('veth1', '02:00:00:00:00:01', 'c-eth0');
    await nft.apply(cmds);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.slice(0, 2)).toEqual([expect.stringMatching(/nsenter$/), '--net=/var/run/netns/h']);
    expect(calls[0]!.slice(2, 4)).toEqual([expect.stringMatching(/nft$/), '-j']);
    expect(JSON.parse(calls[0]![4]!)).toEqual({ nftables: cmds });
  });

  it('listTable: a missing table is undefined; a failed apply names the transaction by its size', async () => {
    const fail = (stderr: string) => async (argv: readonly string[]): Promise<string> => {
      throw new KernelError(`${argv.join(' ')}: ${stderr}`, { argv, exitCode: 1, stderr });
    };
    expect(await createNft({ exec: fail('Error: No such file or directory\nlist table bridge nat\n') }).listTable('bridge', 'nat')).toBeUndefined();
    await expect(createNft({ exec: fail('Error: Operation not permitted') }).listTable('bridge', 'nat')).rejects.toThrow('Operation not permitted');
    const err = await createNft({ exec: fail('internal:0:0-0: Error: Could not process rule: Operation not permitted') })
      .apply(spoofCheckSetup('v', '02:00:00:00:00:01', 'c-eth0'))
      .then(
        () => undefined,
        (e: unknown) => e as KernelError,
      );
    if (err === undefined) throw new Error('apply should have failed');
    expect(err.message).toBe('nft -j <10 commands>: internal:0:0-0: Error: Could not process rule: Operation not permitted');
    expect(err.stderr).toContain('Operation not permitted');
  });

  it('listTable parses what nft prints', async () => {
    const nft = createNft({ exec: async () => GO_LISTING });
    expect((await nft.listTable('bridge', 'nat'))?.rules).toHaveLength(4);
  });
});

describe('bridge macspoofchk on FakeKernel + FakeNft', () => {
  function setup(ipamResult?: Partial<Result>) {
    const b = fakeBridge(ipamResult, { macspoofchk: true });
    const rules = async () => withoutHandles(await b.nft.listTable('bridge', 'nat'))?.rules;
    const chains = async () => withoutHandles(await b.nft.listTable('bridge', 'nat'))?.chains.map((c) => c.name);
    return { ...b, rules, chains };
  }
  const L3 = { isGateway: true, ipam: { type: 'host-local' } };

  it('ADD: the rules for the host veth and the container MAC, in ONE nft transaction and no more kernel calls', async () => {
    const { world, nft, deps, args, rules, chains } = setup();
    const r = await cmdAdd(args(L3), deps);
    expect(nft.execs).toBe(1);
    expect(world.calls).toBe(8); // as without macspoofchk: bridge read, host batch, pod batch, final read, 4 sysctl files
    const veth = r.interfaces![1]!.name;
    const mac = r.interfaces![2]!.mac!;
    expect(mac).toBe('02:01:01:01:01:01');
    expect(await rules()).toEqual(expectedRules('c1-eth0', veth, mac));
    expect(await chains()).toEqual(['PREROUTING', 'cni-br-iface-c1-eth0', 'cni-br-iface-c1-eth0-mac']);
    expect((await nft.listTable('bridge', 'nat'))?.chains[0]).toEqual({ ...BR, name: 'PREROUTING', handle: 1, type: 'filter', hook: 'prerouting', prio: -300, policy: 'accept' });
  });

  it.each([
    ['L2', { ipam: {} }],
    ['L2 disableContainerInterface', { ipam: {}, disableContainerInterface: true }],
    ['a configured MAC in upper case', { ...L3, args: { cni: { mac: '0A:58:0A:01:02:4F' } } }],
  ])('ADD %s: the rules too, with the MAC in lower case', async (_n, conf) => {
    const { deps, args, rules } = setup();
    const r = await cmdAdd(args(conf), deps);
    expect(await rules()).toEqual(expectedRules('c1-eth0', r.interfaces![1]!.name, r.interfaces![2]!.mac!));
    expect(r.interfaces![2]!.mac).toMatch(/^[0-9a-f:]{17}$/);
  });

  it('without macspoofchk: no nft exec on ADD or DEL', async () => {
    const { nft, deps, args } = setup();
    await cmdAdd(args({ ...L3, macspoofchk: false }), deps);
    await cmdDel(args({ ...L3, macspoofchk: false }), deps);
    expect(nft.execs).toBe(0);
  });

  it('DEL: a read and one apply; the table and the base chain stay; a repeated DEL reads only and logs nothing', async () => {
    const { nft, deps, args, rules, chains, logs, calls } = setup();
    await cmdAdd(args(L3), deps);
    const execs = nft.execs;
    await cmdDel(args(L3), deps);
    expect(nft.execs - execs).toBe(2);
    expect(await rules()).toEqual([]);
    expect(await chains()).toEqual(['PREROUTING']);
    const again = nft.execs;
    await cmdDel(args(L3), deps);
    expect(nft.execs - again).toBe(1);
    nft.tables.clear(); // no table at all
    await cmdDel(args(L3), deps);
    expect(logs).toEqual([]);
    expect(calls.filter((c) => c === 'del host-local')).toHaveLength(3);
  });

  it.each([
    ['the pod interface gone', async (s: ReturnType<typeof setup>) => s.kernel.inNetns(POD).deleteLink('eth0'), {}],
    ['the netns gone (upstream leaves the rules)', async (s: ReturnType<typeof setup>) => s.world.deleteNetns(POD), {}],
    ['CNI_NETNS empty (upstream leaves the rules)', async () => {}, { netns: '' }],
  ] as const)('DEL with %s removes the rules', async (_n, prepare, o) => {
    const s = setup();
    await cmdAdd(s.args(L3), s.deps);
    await prepare(s);
    await cmdDel(s.args(L3, o), s.deps);
    expect(await s.rules()).toEqual([]);
    expect(await s.chains()).toEqual(['PREROUTING']);
    expect(s.calls).toEqual(['add host-local', 'del host-local']);
  });

  it("DEL of one container leaves another container's rules whole", async () => {
    const { world, deps, args, rules } = setup();
    world.addNetns('/var/run/netns/pod2');
    const r1 = await cmdAdd(args(L3), deps);
    const r2 = await cmdAdd(args(L3, { containerId: 'c2', netns: '/var/run/netns/pod2' }), deps);
    await cmdDel(args(L3), deps);
    expect(await rules()).toEqual(expectedRules('c2-eth0', r2.interfaces![1]!.name, r2.interfaces![2]!.mac!));
    expect(r1.interfaces![1]!.name).not.toBe(r2.interfaces![1]!.name);
  });

  it('DEL: a teardown failure goes to stderr only; IPAM is released and DEL succeeds', async () => {
    const { nft, deps, args, logs, calls } = setup();
    await cmdAdd(args(L3), deps);
    nft.failNext('Operation not permitted');
    await cmdDel(args(L3), deps);
    expect(logs).toEqual(['failed to teardown spoof-check: nft -j: internal:0:0-0: Error: Could not process rule: Operation not permitted']);
    expect(calls).toEqual(['add host-local', 'del host-local']);
  });

  it('DEL: an IPAM DEL failure is returned before the teardown, as upstream', async () => {
    const { deps, args, rules } = setup();
    await cmdAdd(args(L3), deps);
    deps.ipam.del = async () => {
      throw new Error('ipam down');
    };
    await expect(cmdDel(args(L3), deps)).rejects.toThrow('ipam down');
    expect(await rules()).toHaveLength(4);
  });

  it('ADD: a setup failure is the error (it wins over a pod failure beside it); the IP is released; no rules', async () => {
    const { world, nft, deps, args, calls, rules } = setup();
    nft.failNext('Operation not supported');
    world.failOn('prependRoute', 'EPERM');
    await expect(cmdAdd(args({ ...L3, isDefaultGateway: true }), deps)).rejects.toThrow(
      'failed to setup spoof-check: nft -j: internal:0:0-0: Error: Could not process rule: Operation not supported',
    );
    expect(calls).toEqual(['add host-local', 'del host-local']);
    expect(await rules()).toBeUndefined();
  });

  it('ADD: a failure after the setup removes the rules and releases the IP', async () => {
    const { world, deps, args, calls, rules, kernel } = setup();
    world.failOn('prependRoute', 'EPERM');
    await expect(cmdAdd(args({ ...L3, isDefaultGateway: true }), deps)).rejects.toThrow(/^failed to add route '0.0.0.0\/0 via 10.1.2.1 dev eth0'/);
    expect(await rules()).toEqual([]);
    expect(calls).toEqual(['add host-local', 'del host-local']);
    expect(await kernel.getLink('veth03030303')).toBeDefined(); // the veth is left for the runtime's DEL, as upstream
  });

  it('ADD: the port never comes up (after the setup): the rules are removed', async () => {
    const { kernel, deps, args, rules } = setup();
    deps.kernel = withVethOperstate(kernel, 'DOWN');
    await expect(cmdAdd(args({ ipam: {} }), deps)).rejects.toThrow('bridge port in error state: down');
    expect(await rules()).toEqual([]);
  });

  it('CHECK does not look at the rules (as upstream)', async () => {
    const { nft, deps, args } = setup();
    const r = await cmdAdd(args(L3), deps);
    nft.tables.clear();
    const before = nft.execs;
    await cmdCheck(args({ ...L3, prevResult: r }), deps);
    expect(nft.execs).toBe(before);
  });

  it('SpoofChecker.teardown of nothing is no apply', async () => {
    const nft = new FakeNft();
    await new SpoofChecker(nft, 'c1-eth0').teardown();
    expect(nft.execs).toBe(1);
  });
});
