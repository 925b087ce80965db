// cnitool entry: the real process to runCnitool.
import { writeSync } from 'node:fs';
import { runCnitool } from './cnitool.js';

const write = (fd: number) => (text: string) => {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off);
};

void runCnitool({ argv: process.argv, env: process.env, cwd: process.cwd(), writeStdout: write(1), writeStderr: write(2) }).then((code) => {
  process.exitCode = code;
});
