// One attempt of LocalManager.acquireLease (Go's tryAcquireLease in pkg/subnet/etcd/local_manager.go):
//   1. reuse the lease that holds our PublicIP, if it is ours (public-ip-reuse.ts);
//   2. else the previous subnet (subnet.env), if nobody holds it and it fits the config;
//   3. else a random free subnet among the first 100 (allocate.ts),
// created with a Version==0 txn (never over another node's key) and a 24 h etcd lease.
import { type IPNet, formatIP, ipEqual, netEqual } from '../../../shared/net/ip.js';
import type { Logger } from '../../../shared/log.js';
import type { Lease, LeaseAttrs } from '../../lease.js';
import { pickSubnet } from '../allocate.js';
import { type Config, subnetFits } from '../config.js';
import type { PreviousSubnets } from '../subnet-file.js';
import { isRecoverableError } from './etcd-client.js';
import { leaseLabel } from './peer-watch.js';
import { chooseReusableLease, refusalLine } from './public-ip-reuse.js';
import { type ReadHeader, type Registry, describeSubnet } from './registry.js';

export interface AcquireDeps {
  registry: Registry;
  log: Logger;
  now: () => number;
  random: () => number;
  ttlSec: number;
  liveWindowMs: number;
  previous: PreviousSubnets;
  /** the lease this manager holds already, if any (a re-acquire) */
  held: Lease | undefined;
  /** the listing's header: the reference for noticing a later store reset */
  observe(h: ReadHeader): void;
}

function sameNet(a: IPNet | undefined, b: IPNet | undefined): boolean {
  if (!a || !b) return a === b;
  return netEqual(a, b);
}

function makeLease(d: AcquireDeps, sn: IPNet, sn6: IPNet | undefined, attrs: LeaseAttrs, expiration: number | undefined): Lease {
  const l: Lease = {
    enableIPv4: true,
    enableIPv6: sn6 !== undefined,
    subnet: sn,
    attrs,
    expiration: expiration ?? d.now() - 1000,
  };
  if (sn6) l.ipv6Subnet = sn6;
  if (expiration === undefined) l.reservation = true;
  return l;
}

/** One attempt, in Go's order (the header above); a lost creation race rejects with LeaseConflictError. */
export async function tryAcquireLease(d: AcquireDeps, cfg: Config, attrs: LeaseAttrs, signal: AbortSignal): Promise<Lease> {
  const snap = await d.registry.getSubnets(signal);
  d.observe(snap); // the reference for noticing a later reset (nothing listens yet)
  const { leases } = snap;

  // 1. reuse the lease that holds our public IP, if it is ours (public-ip-reuse.ts): behind one
  //    public IP (NAT) it may be another live node's, which Go takes silently
  const candidates = cfg.enableIPv4 ? leases.filter((l) => ipEqual(l.attrs.publicIP, attrs.publicIP)) : [];
  if (candidates.length > 0) {
    const decision = chooseReusableLease({
      candidates: await withExpirations(d, candidates, signal),
      attrs,
      previous: d.previous.subnet,
      held: d.held,
      now: d.now(),
      ttlSec: d.ttlSec,
      liveWindowMs: d.liveWindowMs,
    });
    if (decision.refused.length > 0) d.log.warn(refusalLine(attrs.publicIP, decision.refused));
    const mine = decision.reuse;
    if (mine && subnetFits(cfg, mine.subnet, mine.ipv6Subnet)) {
      d.log.info(`Found lease (${leaseLabel(mine)}) for current IP (${formatIP(attrs.publicIP)}), reusing (${decision.because})`);
      const ttl = mine.reservation ? 0 : d.ttlSec;
      if (mine.reservation) d.log.info(`${describeSubnet(mine.subnet, mine.ipv6Subnet)} is a reservation: keeping it without a TTL`);
      const exp = await d.registry.updateSubnet(mine.subnet, mine.ipv6Subnet, attrs, ttl, signal);
      return makeLease(d, mine.subnet, mine.ipv6Subnet, attrs, exp);
    }
    if (mine) {
      d.log.info(`Found lease (${leaseLabel(mine)}) for current IP (${formatIP(attrs.publicIP)}) but not compatible with current config, deleting`);
      await d.registry.deleteSubnet(mine.subnet, mine.ipv6Subnet, signal);
    }
  }

  // 2. the previous subnet from subnet.env, if nobody holds it and it fits the config
  const prev = d.previous.subnet;
  const prev6 = cfg.enableIPv6 ? d.previous.ipv6Subnet : undefined;
  if (prev && (!cfg.enableIPv6 || prev6)) {
    const taken = leases.some((l) => sameNet(l.subnet, prev) || (prev6 && l.ipv6Subnet && netEqual(l.ipv6Subnet, prev6)));
    if (!subnetFits(cfg, prev, prev6)) {
      d.log.info(`Found previously leased subnet (${describeSubnet(prev, prev6)}) but not compatible with the Etcd network config, ignoring`);
    } else if (!taken) {
      d.log.info(`Found previously leased subnet (${describeSubnet(prev, prev6)}), reusing`);
      const exp = await d.registry.createSubnet(prev, prev6, attrs, d.ttlSec, signal);
      return makeLease(d, prev, prev6, attrs, exp);
    }
  }

  // 3. a random free subnet among the first 100
  const pick = pickSubnet(cfg, leases, d.random);
  d.log.info(`Picking subnet in range ${pick.range}`);
  const exp = await d.registry.createSubnet(pick.sn, pick.sn6, attrs, d.ttlSec, signal);
  d.log.info(`Allocated lease (${describeSubnet(pick.sn, pick.sn6)}) to current node (${formatIP(attrs.publicIP)})`);
  return makeLease(d, pick.sn, pick.sn6, attrs, exp);
}

/**
 * The candidates with their expiration looked up where it decides something (live leases when no
 * previous subnet is known); a failed lookup leaves 0 ("unknown").
 */
async function withExpirations(d: AcquireDeps, candidates: Lease[], signal: AbortSignal): Promise<Lease[]> {
  if (d.previous.subnet) return candidates;
  return Promise.all(
    candidates.map(async (c) => {
      if (c.reservation) return c;
      try {
        const r = await d.registry.getSubnet(c.subnet, c.ipv6Subnet, signal);
        return r.lease ? { ...c, expiration: r.lease.expiration } : c;
      } catch (err) {
        if (signal.aborted || isRecoverableError(err)) throw err;
        return c;
      }
    }),
  );
}
