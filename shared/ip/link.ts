// Link names (upstream pkg/ip/link_linux.go).

/** ip.RandomVethName: `veth` + 4 random bytes in hex. */
export function randomVethName(random: (n: number) => Uint8Array): string {
  return `veth${Buffer.from(random(4)).toString('hex')}`;
}
