// Preloaded into flanneld by scripts/bench/leases-heap.mjs (node --require, bun --preload): on SIGURG
// writes one line `MEMPROBE {json}` to stderr with what the runtime says about its memory, so that the
// bench can split VmRSS into heap, external buffers and the rest. Not part of the daemon.
'use strict';
process.on('SIGURG', () => {
  const m = process.memoryUsage();
  let spaces;
  try {
    spaces = Object.fromEntries(require('node:v8').getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]));
  } catch {
    spaces = undefined;
  }
  process.stderr.write(`MEMPROBE ${JSON.stringify({ ...m, spaces })}\n`);
});
