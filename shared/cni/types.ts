// CNI result types in the spec 1.0/1.1 shape (containernetworking/cni pkg/types/100). Plugins build and
// return these; version.ts renders them at the config's cniVersion.
export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface IPConfig {
  /** index into Result.interfaces */
  interface?: number;
  /** `ip/prefix` */
  address: string;
  gateway?: string;
}

export interface Route {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface DNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IPConfig[];
  routes?: Route[];
  dns?: DNS;
}

/** The arguments of one plugin invocation (skel.CmdArgs). */
export interface CmdArgs {
  containerId: string;
  netns: string;
  ifName: string;
  args: string;
  path: string;
  /** CNI_NETNS_OVERRIDE */
  netnsOverride: string;
  stdinData: Buffer;
}

/** A result already rendered by the plugin, printed as is (loopback's prevResult pass-through quirk). */
export class PreformattedResult {
  constructor(readonly text: string) {}
}

export interface PluginFuncs {
  /** Returns the result; never prints. runPlugin renders it at the config's cniVersion. */
  add(a: CmdArgs): Promise<Result | PreformattedResult>;
  /** Must succeed when things are already gone. */
  del(a: CmdArgs): Promise<void>;
  check?(a: CmdArgs): Promise<void>;
  status?(a: CmdArgs): Promise<void>;
  gc?(a: CmdArgs): Promise<void>;
}
