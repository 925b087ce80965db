// The subnet manager seam (flannel's pkg/subnet/subnet.go `Manager`): where the network config
// comes from, who holds which subnet, and how this node keeps its own. main.ts and the backends
// speak only this interface; the datastore behind it is an implementation's business
// (daemon/subnet/etcd/local-manager.ts for etcd, daemon/subnet/kube/ for Kubernetes Node objects).
//
// Compared with Go's interface: HandleSubnetFile is subnet-file.ts (the same for every manager),
// WatchLease (own key) is folded into completeLease plus onOwnLeaseChange, and GetStoredMacAddresses /
// GetStoredPublicIP (used only by Go's kube manager to carry a VtepMAC over a restart) are left to
// the implementation: the vxlan backend keeps its VtepMAC in the data dir for every manager.
import type { Lease, LeaseAttrs, LeaseEvent } from '../lease.js';
import type { Logger } from '../../shared/log.js';
import type { Config } from './config.js';
import type { PreviousSubnets } from './subnet-file.js';

export interface SubnetManager {
  /** One line naming the manager, logged at start ("Created subnet manager: …"). */
  name(): string;

  /**
   * The network config (Network, SubnetLen, Backend, …), parsed and checked (config.ts
   * parseAndCheckConfig). Rejects when it is missing or invalid; main retries every second.
   */
  getNetworkConfig(signal: AbortSignal): Promise<Config>;

  /**
   * The subnets this node held before (subnet.env, or the network.json history for a reverted
   * config), asked for first by acquireLease. main learns them after construction, once the
   * config is known. A manager whose subnet is assigned elsewhere (Kubernetes podCIDR) may ignore it.
   */
  setPrevious(previous: PreviousSubnets): void;

  /**
   * Takes (or re-takes) this node's lease with `attrs` (PublicIP, backend type and data). Retries
   * datastore outages until `signal` aborts; rejects on a refusal that a retry cannot cure.
   */
  acquireLease(attrs: LeaseAttrs, signal: AbortSignal): Promise<Lease>;

  /** Extends the lease now (Go's RenewLease), for managers whose leases expire. */
  renewLease?(lease: Lease, signal: AbortSignal): Promise<Lease>;

  /**
   * Keeps `lease` alive until `signal` aborts, then resolves (the lease stays, for a restart).
   * Rejects only when the lease is lost for good (another node holds the subnet now): the daemon
   * then exits non-zero. Changes of the own lease are announced through onOwnLeaseChange.
   */
  completeLease(lease: Lease, signal: AbortSignal): Promise<void>;

  /** The own lease as last acquired, renewed or changed; undefined before acquireLease. */
  lease(): Lease | undefined;

  /** Calls `f` on every change of the own lease (renewal, re-take, an operator's edit); returns the unsubscribe. */
  onOwnLeaseChange(f: (lease: Lease) => void): () => void;

  /**
   * Peer lease batches, the own lease left out: the first batch is the snapshot (every peer
   * `added`, possibly empty), then changes as they happen. Never throws for datastore trouble:
   * it retries until `signal` aborts, then ends.
   */
  watchLeases(signal: AbortSignal): AsyncIterable<LeaseEvent[]>;

  /** Every lease in the datastore now, ours included (e.g. to avoid a VtepMAC another node advertises). */
  listLeases(signal: AbortSignal): Promise<Lease[]>;

  /**
   * The VtepMACs this node advertised before, as the datastore keeps them (Go's GetStoredMacAddresses:
   * the kube manager reads its own Node's backend-data annotations), so a rebooted node keeps the MAC
   * its peers know. Optional: the etcd manager has the data dir's MAC file for this.
   */
  storedMacAddresses?(): { v4?: string; v6?: string };
}

/** What every manager's constructor function (create-manager.ts) gets besides the flags. */
export interface SubnetManagerDeps {
  /** subnet.env's subnets from the previous run (main may refine them later: setPrevious) */
  previous: PreviousSubnets;
  log: Logger;
}

/** A constructed manager, with what main needs beside the interface. */
export interface CreatedSubnetManager {
  manager: SubnetManager;
  /**
   * The network config's raw text read afresh (not a manager's cached copy) and where it lives
   * (for log lines), polled by config-watch.ts. Absent: the config is not watched.
   */
  configSource?: { where: string; read(signal: AbortSignal): Promise<string> };
  /** Releases connections; the lease stays in the datastore (a restart takes it again). */
  close(): void;
  /**
   * Addresses the datastore records for this node, standing in for --public-ip / --public-ipv6
   * (Go: the kube manager's node-public-ip annotations, GetStoredPublicIP).
   */
  storedPublicIP?: { v4?: string; v6?: string };
  /** Subscribes to the health of the manager's datastore watch (true: up), for /readyz. */
  onWatchHealth?(f: (up: boolean) => void): void;
}
