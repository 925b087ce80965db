// libcni moved to scripts/cnitool/libcni.ts (the runtime side); Go's PathError text to shared/go/errors.ts.
// Shim for the redesign wave (the flannel plugin's goPathError); deleted in the sweep.
export { pathError as goPathError } from '../go/errors.js';
