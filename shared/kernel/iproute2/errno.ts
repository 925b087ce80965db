// stderr → KernelErrorCode: the ONLY place that reads what a tool printed to decide what happened.
//
// iproute2 words one errno differently per object ("Cannot find device", `Device "x" does not exist.`,
// "ipv4: Address not found."), and iptables/nft add their own words, so this table is collected from
// iproute2 6.1, iptables 1.8.9 (nft and legacy) and nft 1.0.6. Order matters: the first match wins.
import type { KernelErrorCode } from '../errors.js';

const TABLE: ReadonlyArray<readonly [RegExp, KernelErrorCode]> = [
  [/Cannot find device/, 'ENODEV'],
  [/Device ".*" does not exist/, 'ENODEV'],
  [/No such device/, 'ENODEV'],
  [/No such process/, 'ESRCH'], // route del of a missing route
  [/address not found/i, 'EADDRNOTAVAIL'], // addr del: "ipv4: Address not found." / "ipv6: address not found."
  [/Cannot assign requested address/, 'EADDRNOTAVAIL'], // v6 addr del
  [/does not exist/i, 'ENOENT'], // iptables `Chain 'X' does not exist`, "FIB table does not exist"
  [/No such file or directory/i, 'ENOENT'], // neigh/fdb del, missing sysctl, nsenter: netns path gone, nft
  [/No chain\/target\/match by that name/, 'ENOENT'], // iptables -X/-F of a missing chain
  [/Bad rule \(does a matching rule exist in that chain\?\)/, 'ENOENT'], // iptables -D of a missing rule
  [/Directory nonexistent/, 'ENOENT'], // sh: sysctl of a missing interface
  [/File exists/, 'EEXIST'],
  [/Address already assigned/, 'EEXIST'],
  [/Chain already exists/, 'EEXIST'],
  [/Operation not permitted/, 'EPERM'],
  [/Permission denied/, 'EACCES'],
  [/Device or resource busy/, 'EBUSY'],
  [/Operation not supported|Not supported/, 'EOPNOTSUPP'],
  [/Unknown device type/, 'EOPNOTSUPP'], // `ip link add … type ipip|wireguard` without the module (netlink: EOPNOTSUPP)
  [/Network is unreachable/, 'ENETUNREACH'],
  [/Invalid argument|invalid gateway|Invalid "/i, 'EINVAL'],
  [/Input\/output error/, 'EIO'],
];

/** The code of a failed command from its stderr; `UNKNOWN` when none of the known wordings is there. */
export function codeFromStderr(stderr: string): KernelErrorCode {
  for (const [re, code] of TABLE) if (re.test(stderr)) return code;
  return 'UNKNOWN';
}

