// Three built flanneld behind one --public-ip (the NAT / Vagrant case, issue 9 item 2b): each in its
// own namespace, reaching one etcd through a bridge in a hub namespace. Go's reuse-by-PublicIP
// hands the second and third the first one's lease; here each gets its own subnet, nobody's lease
// is overwritten, and the refusal is one warning line.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasEtcd } from '../../helpers/etcd.js';
import { startWipeableEtcd, type WipeableEtcd } from '../../helpers/etcd-wipeable.js';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { SEED_ALLOC, buildFlanneld, daemonRunner, until } from './daemon-harness.js';

const NAT_IP = '192.0.2.1';
const HUB_IP = '10.61.0.1';

describe.skipIf(!hasEtcd || !canUseNetns)('flanneld (built): three nodes behind one --public-ip', () => {
  let hub: Netns;
  const nodes: Netns[] = [];
  let etcd: WipeableEtcd;
  let dir: string;
  const runners = [0, 1, 2].map((i) => daemonRunner(() => nodes[i]!));

  beforeAll(async () => {
    buildFlanneld();
    hub = createNetns('pubhub');
    hub.exec(['ip', 'link', 'add', 'br0', 'type', 'bridge']);
    hub.exec(['ip', 'addr', 'add', `${HUB_IP}/24`, 'dev', 'br0']);
    hub.exec(['ip', 'link', 'set', 'br0', 'up']);
    for (let i = 0; i < 3; i++) {
      const ns = createNetns(`pub${i}`);
      nodes.push(ns);
      hub.exec(['ip', 'link', 'add', `h${i}`, 'type', 'veth', 'peer', 'name', 'ext0', 'netns', ns.name]);
      hub.exec(['ip', 'link', 'set', `h${i}`, 'master', 'br0', 'up']);
      ns.exec(['ip', 'addr', 'add', `10.61.0.${10 + i}/24`, 'dev', 'ext0']);
      ns.exec(['ip', 'link', 'set', 'ext0', 'up']);
    }
    etcd = await startWipeableEtcd({ netns: hub.name, host: HUB_IP });
    dir = mkdtempSync(join(tmpdir(), `flanneld-pubip-${process.pid}-`));
  });
  afterEach(async () => {
    for (const r of runners) await r.killAll();
  });
  afterAll(async () => {
    await etcd?.stop();
    for (const ns of nodes) ns.delete();
    hub?.delete();
    cleanupNetns();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('all three get distinct leases, none is overwritten, the second and third say why in one line', async () => {
    etcd.ctl(['put', '/coreos.com/network/config', SEED_ALLOC]);
    const started: { d: ReturnType<(typeof runners)[number]['run']>; file: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const file = join(dir, `n${i}`, 'subnet.env');
      const d = runners[i]!.run([
        '--etcd-endpoints', etcd.endpoint,
        '--iface', 'ext0',
        '--public-ip', NAT_IP,
        '--subnet-file', file,
        '--data-dir', join(dir, `n${i}`, 'data'),
      ]);
      await until(() => d.stderr().includes('to renew lease'), `daemon ${i}`);
      started.push({ d, file });
    }
    const subnets = started.map(({ file }) => /FLANNEL_SUBNET=(10\.\d+\.\d+)\.1\/20/.exec(readFileSync(file, 'utf8'))![1]!);
    expect(new Set(subnets).size).toBe(3);
    const keys = etcd.ctl(['get', '--prefix', '--keys-only', '/coreos.com/network/subnets/']).trim().split(/\n+/).sort();
    expect(keys).toEqual(subnets.map((s) => `/coreos.com/network/subnets/${s}.0-20`).sort());
    for (const k of keys) expect(etcd.ctl(['get', '--print-value-only', k])).toBe(`{"PublicIP":"${NAT_IP}","PublicIPv6":null}\n`);

    // the first found nothing to refuse; the others name what they left alone, once
    expect(started[0]!.d.stderr()).not.toContain('Not reusing');
    const refusal = (i: number) => started[i]!.d.stderr().split('\n').filter((l) => l.includes('Not reusing'));
    expect(refusal(1)).toHaveLength(1);
    expect(refusal(1)[0]).toMatch(
      new RegExp(`^W\\d{4} .* Not reusing lease ${subnets[0]!.replace(/\./g, '\\.')}\\.0/20 \\(it was renewed \\d+s ago\\) although it carries our public IP ${NAT_IP}: another live node behind the same public IP holds it`),
    );
    expect(refusal(2)).toHaveLength(1);
    expect(refusal(2)[0]).toMatch(/Not reusing leases .* \(2 live leases carry this public IP\)/);
    for (const { d } of started) expect(d.running()).toBe(true);

    // a restart of the second (its subnet.env kept) finds its own lease again, and only its own
    expect(await runners[1]!.stop(started[1]!.d)).toBe(0);
    const again = runners[1]!.run([
      '--etcd-endpoints', etcd.endpoint, '--iface', 'ext0', '--public-ip', NAT_IP,
      '--subnet-file', started[1]!.file, '--data-dir', join(dir, 'n1', 'data'),
    ]);
    await until(() => again.stderr().includes('to renew lease'), 'the restart');
    expect(again.stderr()).toContain(`Found lease (ip: ${subnets[1]}.0/20 ipv6: <nil>) for current IP (${NAT_IP}), reusing (our previous subnet)`);
    expect(etcd.ctl(['get', '--prefix', '--keys-only', '/coreos.com/network/subnets/']).trim().split(/\n+/).sort()).toEqual(keys);
  });
});
