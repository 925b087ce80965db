// Moved to shared/go/json.ts (shim for the redesign wave; deleted in the sweep).
export * from '../go/json.js';
