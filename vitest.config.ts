import { defineConfig } from 'vitest/config';

// Three tiers (see README "Tests"):
// - unit: pure logic, no root, no kernel, no etcd; runs anywhere.
// - integration: real kernel in network namespaces the test creates, real etcd on loopback,
//   the built executables in dist/bin. Files run one at a time: the kernel is global state.
// - e2e: the multi-host lab (netns hosts, etcd, flanneld, pods, podman).
// Every run is guarded: it fails if anything wrote under /var/lib/flannel, /var/lib/cni, /run/flannel
// or /etc/cni (test/helpers/sandbox-guard.ts; FLANNEL_TS_SANDBOX_GUARD=off on a real node).
export default defineConfig({
  test: {
    globalSetup: ['test/helpers/sandbox-guard.ts'],
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
