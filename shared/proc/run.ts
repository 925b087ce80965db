// Running a program to its end: stdin bytes in, stdout, stderr and the exit status out. The one way
// the plugins and the iproute2/iptables adapter start processes.
//
// Under bun (the compiled executables) it goes through Bun.spawn. Bun's node:child_process costs a
// plugin ~5 ms to load and ~20 ms for its first spawn on this project's machine; Bun.spawn costs 2–4 ms.
// Under Node (the Node-script build) it goes through node:child_process, loaded at the first run, so a
// start that runs nothing never pays for it. Either way the child has been started when runProcess
// returns: a caller may start a program, then do other work while it runs.

export interface RunOptions {
  /** stdin's bytes (default: none, stdin at EOF) */
  input?: Buffer | string;
  /** the environment (default: ours); undefined values are left out */
  env?: Record<string, string | undefined>;
}

export interface RunResult {
  /** the exit code, or null when a signal ended it */
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** What runProcess needs of bun's global. */
interface BunSpawn {
  spawn(
    cmd: string[],
    o: { env?: Record<string, string>; stdin: Uint8Array; stdout: 'pipe'; stderr: 'pipe' },
  ): { exited: Promise<number>; exitCode: number | null; signalCode: string | null; stdout: ReadableStream<Uint8Array>; stderr: ReadableStream<Uint8Array> };
}

/**
 * Runs argv[0] (a path, or a name looked up on PATH) with argv[1..]. Resolves when it has exited and
 * its output is read, whatever its status; rejects only when it could not be started (the error's
 * `code` says why: ENOENT, EACCES, ETXTBSY).
 */
export function runProcess(argv: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  const bun = (globalThis as { Bun?: BunSpawn }).Bun;
  return bun ? runWithBun(bun, argv, o) : runWithNode(argv, o);
}

function definedEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

async function runWithBun(bun: BunSpawn, argv: readonly string[], o: RunOptions): Promise<RunResult> {
  const input = typeof o.input === 'string' ? Buffer.from(o.input) : (o.input ?? Buffer.alloc(0));
  // throws at once (ENOENT, EACCES, ...) when the program cannot be started
  const child = bun.spawn([...argv], { ...(o.env ? { env: definedEnv(o.env) } : {}), stdin: input, stdout: 'pipe', stderr: 'pipe' });
  const [stdout, stderr] = await Promise.all([new Response(child.stdout).arrayBuffer(), new Response(child.stderr).arrayBuffer(), child.exited]);
  return { code: child.signalCode ? null : child.exitCode, signal: child.signalCode, stdout: Buffer.from(stdout), stderr: Buffer.from(stderr) };
}

function runWithNode(argv: readonly string[], o: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = o.env ? definedEnv(o.env) : undefined;
    const child = process.getBuiltinModule('node:child_process').spawn(argv[0]!, argv.slice(1), { ...(env ? { env } : {}), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let spawnError: Error | undefined;
    child.on('error', (e) => (spawnError = e));
    child.stdin.on('error', () => {}); // EPIPE when the program exits without reading: its status tells
    child.on('close', (code, signal) => {
      if (spawnError !== undefined) return reject(spawnError); // never started ('close' then has code -errno)
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
    child.stdin.end(o.input ?? '');
  });
}
