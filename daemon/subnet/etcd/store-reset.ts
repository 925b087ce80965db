// Noticing that etcd was rebuilt empty or restored to an older revision.
//
// After such a reset nothing tells a client: a watch re-created on the new store from our last
// revision + 1 is accepted and simply waits for a revision the store may never reach, and our own
// key is gone without a delete event. So every linearizable read (a listing, the own-key read) is
// checked against what we saw before:
//   - the cluster ID in the response header changed (another cluster answers on our endpoints);
//   - the revision went backwards (a wiped data dir, or a snapshot restored without
//     --bump-revision). A linearizable read returns at least every revision committed before it, so
//     a lower one cannot come from a lagging member; a watch header can (a follower applies later),
//     which is why a watch that starts behind only triggers such a read (WatchBatch 'behind').
// A wiped single-member etcd restarted with the same name and peer URLs gets the same cluster ID (it
// is a hash of the member IDs), so the revision is the signal that matters in practice; the cluster
// ID covers a re-created cluster with another token. LocalManager adds a third clue the detector
// cannot see: our key missing when re-read after a broken stream (a new store already past our
// revision), and treats a compacted watch like a possible restore (`--mark-compacted`).

export interface StoreHeader {
  revision: number;
  clusterId?: string;
}

export class StoreResetDetector {
  private maxRevision = 0;
  private clusterId: string | undefined;

  /** Highest revision seen so far (0 before the first read). */
  get revision(): number {
    return this.maxRevision;
  }

  /** A revision that really exists in the store (a watch event): raises the mark, never a reset. */
  saw(revision: number): void {
    if (revision > this.maxRevision) this.maxRevision = revision;
  }

  /**
   * The header of a linearizable read. Returns why the store was reset, or undefined. After a
   * reset the new store's header becomes the reference.
   */
  observe(h: StoreHeader): string | undefined {
    let reason: string | undefined;
    if (h.clusterId && this.clusterId && h.clusterId !== this.clusterId) {
      reason = `the etcd cluster ID changed from ${this.clusterId} to ${h.clusterId}`;
    } else if (h.revision > 0 && h.revision < this.maxRevision) {
      reason = `the etcd revision went back from ${this.maxRevision} to ${h.revision} (etcd rebuilt empty or restored from an older snapshot)`;
    }
    if (h.clusterId) this.clusterId = h.clusterId;
    if (reason !== undefined) this.maxRevision = h.revision;
    else this.saw(h.revision);
    return reason;
  }
}
