// Starts the kube subnet manager in-process against the API-server double (test/kube-apiserver).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger } from '../../../shared/log.js';
import { parseOptions, type Options } from '../../../daemon/options.js';
import { createKubeSubnetManager, type KubeSubnetManager } from '../../../daemon/subnet/kube/index.js';
import type { Lease, LeaseEvent } from '../../../daemon/lease.js';
import { formatNet } from '../../../shared/net/ip.js';
import type { ApiServerDouble } from '../../kube-apiserver/server.js';

export const P = 'flannel.alpha.coreos.com/';
export const NET_CONF = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}';
export const DUAL_CONF = '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"vxlan"}}';

/** A peer node's annotations as another flanneld (vxlan) would have written them. */
export function peerAnnotations(ip: string, mac: string, v6?: { ip: string; mac: string }): Record<string, string> {
  const a: Record<string, string> = {
    [`${P}kube-subnet-manager`]: 'true',
    [`${P}backend-type`]: 'vxlan',
    [`${P}backend-data`]: JSON.stringify({ VNI: 1, VtepMAC: mac }),
    [`${P}public-ip`]: ip,
  };
  if (v6) {
    a[`${P}backend-v6-data`] = JSON.stringify({ VNI: 1, VtepMAC: v6.mac });
    a[`${P}public-ipv6`] = v6.ip;
  }
  return a;
}

export interface Started {
  sm: KubeSubnetManager;
  log: ReturnType<typeof memoryLogger>;
  batches: LeaseEvent[][];
  /** current peers by v4 subnet (after applying every batch) */
  peers: Map<string, Lease>;
  stop(): void;
  dir: string;
}

export async function startManager(
  api: ApiServerDouble,
  o: { args?: string[]; env?: Record<string, string>; netConf?: string; watch?: boolean; informer?: Record<string, unknown> } = {},
): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'kube-sm-'));
  writeFileSync(join(dir, 'net-conf.json'), o.netConf ?? NET_CONF);
  const parsed = parseOptions(['--kube-subnet-mgr', `--net-config-path=${join(dir, 'net-conf.json')}`, ...(o.args ?? [`--kube-api-url=${api.url}`])], {});
  if (parsed.kind !== 'run') throw new Error(parsed.stderr);
  const options: Options = parsed.options;
  const log = memoryLogger();
  const created = await createKubeSubnetManager(
    options,
    { previous: {} as never, log },
    {
      env: { NODE_NAME: 'node-a', ...o.env },
      client: { qps: 0 },
      tuning: {
        acquireTimeoutMs: 5000,
        acquireRetryMs: 200,
        informer: { backoffInitialMs: 50, backoffCapMs: 400, downAfterMs: 400, watchIdleMs: 5000, ...o.informer },
      },
      syncTimeoutMs: 10_000,
    },
  );
  const ac = new AbortController();
  const batches: LeaseEvent[][] = [];
  const peers = new Map<string, Lease>();
  if (o.watch !== false) {
    void (async () => {
      for await (const b of created.manager.watchLeases(ac.signal)) {
        batches.push(b);
        for (const ev of b) {
          const k = formatNet(ev.lease.subnet);
          if (ev.type === 'added') peers.set(k, ev.lease);
          else peers.delete(k);
        }
      }
    })();
  }
  return {
    sm: created.manager,
    log,
    batches,
    peers,
    dir,
    stop: () => {
      ac.abort();
      created.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
