import { isIPv4, isIPv6 } from 'node:net';

/**
 * The key a per-address limit counts under: an IPv4 address as it is, an IPv6 address by its /64 (one
 * subscriber's whole network: a host picks any of its 2^64 addresses at will), and an IPv4-mapped IPv6
 * address (how uWS reports IPv4 peers on a dual-stack listener) as the IPv4 address. Anything else is kept
 * as given. Hand-written rather than a dependency: it is one expansion of "::".
 */
export function ipKey(address: string): string {
  const a = address.trim().toLowerCase();
  if (isIPv4(a) || !isIPv6(a)) return a;
  const groups = expandIPv6(a);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (a trailing dotted IPv4 part included). */
function expandIPv6(a: string): number[] {
  let s = a.replace(/%.*$/, ''); // a zone id names an interface, not an address
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const [b0, b1, b2, b3] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    s = `${s.slice(0, v4.index)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const parse = (part: string | undefined) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  return tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}
