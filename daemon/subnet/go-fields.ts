/** @deprecated shim for the redesign wave: use `marshal` from shared/go/json.ts (the sweep deletes this file) */
export { marshal as goMarshal } from '../../shared/go/json.js';
