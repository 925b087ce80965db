/** @deprecated shim for the redesign wave: the logger lives in shared/log.ts (the sweep deletes this file) */
export * from '../shared/log.js';
