// The network config changing under a running flanneld (daemon/config-watch.ts): one warning per
// distinct change, saying what changed and what a restart does; bad configs logged, never fatal.
import { describe, expect, it } from 'vitest';
import { parseIP, parseNet } from '../../../shared/net/ip.js';
import { configDiff, judge, restartOutcome, watchNetworkConfig } from '../../../daemon/config-watch.js';
import type { Lease } from '../../../daemon/lease.js';
import { memoryLogger } from '../../../shared/log.js';
import { parseAndCheckConfig } from '../../../daemon/subnet/config.js';
import { CONFIG_NOT_FOUND } from '../../../daemon/subnet/etcd/registry.js';
import { until } from '../../helpers/until.js';

const A = '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","VNI":1}}';
const B = '{"Network":"10.2.0.0/16","Backend":{"Type":"vxlan","VNI":2}}';
const running = parseAndCheckConfig(A);
const lease: Lease = { enableIPv4: true, enableIPv6: false, subnet: parseNet('10.1.3.0/24'), attrs: { publicIP: parseIP('10.50.0.2') }, expiration: 0 };
const KEY = '/coreos.com/network/config';
const ctx = () => ({ lease });

describe('what changed and what a restart does', () => {
  it('Network and VNI changed: renumbered, pods must be recreated, flannel.1 → flannel.2', () => {
    const r = judge(B, '', { running, key: KEY, context: ctx });
    expect(r.level).toBe('warn');
    expect(r.line).toBe(
      'the network config at /coreos.com/network/config changed: Network 10.1.0.0/16 -> 10.2.0.0/16, SubnetMin 10.1.1.0 -> 10.2.1.0, ' +
        'SubnetMax 10.1.255.0 -> 10.2.255.0, Backend {"Type":"vxlan","VNI":1} -> {"Type":"vxlan","VNI":2}. ' +
        'flanneld keeps running on the config it started with until it is restarted. On restart: ' +
        'this node is renumbered: its subnet 10.1.3.0/24 does not fit the new config; it gets a new subnet in 10.2.0.0/16; ' +
        'pods started before keep addresses in 10.1.3.0/24, lose connectivity and must be recreated; flanneld removes the old gateway from the CNI bridge; ' +
        'flannel.1 will be deleted; flannel.2 will be created',
    );
  });

  it('a wider Network that still holds our subnet: kept; a remembered subnet is named; a backend type change', () => {
    const wider = parseAndCheckConfig('{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"host-gw"}}');
    const out = restartOutcome(running, wider, ctx());
    expect(out).toEqual(['this node keeps its subnet 10.1.3.0/24 (it fits the new config)', 'the backend changes from vxlan to host-gw', 'flannel.1 will be deleted']);
    const back = restartOutcome(running, parseAndCheckConfig(B), { lease, history: [{ network: parseNet('10.2.0.0/16'), subnet: parseNet('10.2.7.0/24') }] });
    expect(back[0]).toBe('this node is renumbered: its subnet 10.1.3.0/24 does not fit the new config; it gets 10.2.7.0/24, which it held there before, if free; else a new one in 10.2.0.0/16');
    expect(restartOutcome(running, parseAndCheckConfig('{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","VNI":1,"Port":4789}}'), ctx())).toEqual([
      'this node keeps its subnet 10.1.3.0/24 (it fits the new config)',
      'the vxlan backend is set up again with the new settings (flannel.1 re-created if incompatible)',
    ]);
  });

  it('the same config in other words is no change; an invalid one is named with its error', () => {
    expect(configDiff(running, parseAndCheckConfig('{ "network": "10.1.0.0/16", "SubnetLen": 24, "Backend": {"Type":"vxlan","VNI":1} }'))).toEqual([]);
    const r = judge('{"Network":"10.1.0.0/16","SubnetLen":31}', '', { running, key: KEY, context: ctx });
    expect(r.line).toBe(
      'the network config at /coreos.com/network/config changed and is invalid (SubnetLen must be less than /31): flanneld keeps running on the config it started with; a restart would wait until the config is fixed',
    );
    const bad = judge('{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","VNI":"x"}}', '', { running, key: KEY, context: ctx });
    expect(bad.line).toMatch(/On restart: this node keeps its subnet 10\.1\.3\.0\/24 .*; the new Backend is invalid \(error decoding VXLAN backend config: .*\): flanneld will fail to start on it$/);
  });
});

describe('watchNetworkConfig', () => {
  /** runs the watch over `values` (the last one repeats; an Error is thrown by the read) and returns its log */
  async function watchValues(values: (string | Error)[], key: string) {
    let i = 0;
    const log = memoryLogger();
    const ac = new AbortController();
    const done = watchNetworkConfig(
      {
        read: async () => {
          const v = values[Math.min(i++, values.length - 1)]!;
          if (v instanceof Error) throw v;
          return v;
        },
        running,
        key,
        intervalMs: 1,
        context: ctx,
        log,
      },
      ac.signal,
    );
    await until(() => i > values.length + 2, 'every value read');
    ac.abort();
    await done;
    return log;
  }

  it('polls: each distinct change is logged once, a bad config and a deleted key too, etcd errors are not, and going back is said once', async () => {
    const values: (string | Error)[] = [
      A, // unchanged: silent
      B,
      B,
      ` ${B} `, // same config, other text: silent
      new Error('etcd cluster is unavailable'), // silent: the lease loops report it
      '{"Network":',
      '{"Network":',
      new Error(CONFIG_NOT_FOUND),
      new Error(CONFIG_NOT_FOUND),
      A,
      A,
    ];
    const log = await watchValues(values, KEY);
    const want = [
      'W the network config at /coreos.com/network/config changed: Network 10.1.0.0/16 -> 10.2.0.0/16,',
      'W the network config at /coreos.com/network/config changed and is invalid (failed to parse network config',
      'W the network config at /coreos.com/network/config was deleted: flanneld keeps running',
      'I the network config at /coreos.com/network/config is back to the one flanneld runs on',
    ];
    expect(log.lines).toHaveLength(want.length);
    log.lines.forEach((l, n) => expect(l.startsWith(want[n]!), l).toBe(true));
  });

  it('a config file (kube mode: --net-config-path) that is deleted is reported once, as the etcd key is', async () => {
    const PATH = '/etc/kube-flannel/net-conf.json';
    const gone = new Error(`failed to read net conf: open ${PATH}: no such file or directory`);
    const values: (string | Error)[] = [A, gone, gone, A];
    const log = await watchValues(values, PATH);
    expect(log.lines.map((l) => l.slice(0, 70))).toEqual([
      `W the network config at ${PATH} was deleted: flanneld keeps`.slice(0, 70),
      `I the network config at ${PATH} is back to the one flanneld runs on`.slice(0, 70),
    ]);
  });
});
