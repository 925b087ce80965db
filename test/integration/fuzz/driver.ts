// The fuzz test's in-process runner: bundled by the test (esbuild) and started ONCE inside the test's
// private "host" netns under a memory limit; it runs many cases through the very code of the four
// plugins (their skeleton, config decoding, delegation, kernel and disk access) without a Node start per
// case. Cases arrive as JSON lines on stdin and run one at a time (flannel's delegation reads
// process.env, which is set to each case's environment); each answer is one JSON line on stdout.
// Delegations to bridge and host-local run in this process too (same build line: argv[1] is set to
// the plugin's copy in the private bin dir), anything else is exec'd from there.
import { createInterface } from 'node:readline';
import { registerInProcess } from '../../../shared/cni/invoke.js';
import type { PluginIo } from '../../../shared/cni/skel.js';
import { runBridge } from '../../../plugins/bridge/world.js';
import { runFlannel } from '../../../plugins/flannel/world.js';
import { runHostLocal } from '../../../plugins/host-local/world.js';
import { runLoopback } from '../../../plugins/loopback/world.js';

registerInProcess('bridge', runBridge);
registerInProcess('host-local', runHostLocal);

const RUN: Record<string, (io: PluginIo) => Promise<number>> = {
  bridge: runBridge,
  'host-local': runHostLocal,
  loopback: runLoopback,
  flannel: runFlannel,
};

interface Request {
  id: number;
  plugin: string;
  bin: string;
  env: Record<string, string>;
  stdin: string;
}

let current: number | undefined;
const crash = (what: string) => (err: unknown) => {
  const text = err instanceof Error ? `${err.stack ?? err.message}` : String(err);
  process.stdout.write(`${JSON.stringify({ id: current ?? -1, crash: `${what}: ${text}` })}\n`);
};
process.on('uncaughtException', crash('uncaught exception'));
process.on('unhandledRejection', crash('unhandled rejection'));

const baseEnv = { ...process.env };

async function runOne(req: Request): Promise<void> {
  current = req.id;
  process.argv[1] = `${req.bin}/${req.plugin}`;
  for (const k of Object.keys(process.env)) delete process.env[k];
  Object.assign(process.env, { PATH: baseEnv.PATH }, req.env);
  let stdout = '';
  let stderr = '';
  const code = await RUN[req.plugin]!({
    env: { ...process.env },
    readStdin: () => Buffer.from(req.stdin),
    writeStdout: (t) => void (stdout += t),
    writeStderr: (t) => void (stderr += t),
  });
  process.stdout.write(`${JSON.stringify({ id: req.id, code, stdout, stderr, rss: process.memoryUsage().rss })}\n`);
  current = undefined;
}

const lines = createInterface({ input: process.stdin });
const queue: Request[] = [];
let busy = false;
async function pump(): Promise<void> {
  if (busy) return;
  busy = true;
  while (queue.length > 0) await runOne(queue.shift()!);
  busy = false;
}
lines.on('line', (line) => {
  if (line.trim() === '') return;
  queue.push(JSON.parse(line) as Request);
  void pump();
});
