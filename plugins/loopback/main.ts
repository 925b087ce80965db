// loopback entry: the real process.
import { runLoopback } from './process.js';

void runLoopback().then((code) => {
  process.exitCode = code;
});
