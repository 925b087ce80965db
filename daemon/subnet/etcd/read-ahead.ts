// Reading a watch ahead of its consumer, so that what arrived while the consumer was busy reaches it
// as one item instead of one item per etcd response.
//
// Why: etcd sends one watch response per revision when it keeps up, so 5000 leases put one after the
// other arrive as 5000 one-event responses. Pulled one at a time, each became one backend batch (one
// kernel exchange, with iproute2 one exec of ~100 ms on a busy host), and routes trickled in for
// minutes after the puts had ended. Read ahead, each batch carries everything that arrived during the
// previous one: the number of batches follows the consumer's pace, not the number of puts.
//
// The queue is bounded by what etcd sends while one batch is handled (events, not raw responses);
// the caller aborts the source when it stops reading (the pump then ends with it).

/**
 * Yields the items of `source`, read ahead: items that arrive while the consumer holds the previous
 * one are queued, and consecutive queued items are folded with `merge(queued, next)` where it returns
 * the folded item (it may update `queued` in place: it has not been handed out yet), or kept apart
 * where it returns undefined. Order is kept; an error of the source is thrown after the items read
 * before it. Stopping early (return/break) leaves the source to the caller's abort.
 */
export async function* readAhead<T>(source: AsyncIterable<T>, merge: (queued: T, next: T) => T | undefined): AsyncGenerator<T> {
  const queue: T[] = [];
  let ended = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const it = source[Symbol.asyncIterator]();
  void (async () => {
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        const folded = queue.length > 0 ? merge(queue[queue.length - 1]!, r.value) : undefined;
        if (folded === undefined) queue.push(r.value);
        else queue[queue.length - 1] = folded;
        wake?.();
      }
    } catch (error) {
      failure = { error };
    } finally {
      ended = true;
      wake?.();
    }
  })();
  for (;;) {
    if (queue.length > 0) {
      yield queue.shift()!;
      continue;
    }
    if (ended) {
      if (failure) throw failure.error;
      return;
    }
    await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
  }
}
