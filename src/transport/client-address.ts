import { BlockList, SocketAddress, isIP } from 'node:net';

/**
 * The client's address when a TLS-terminating load balancer stands in front of the node.
 *
 * The proxy tells it with the PROXY protocol v2 (HAProxy `send-proxy-v2`, AWS NLB, GCP), which uWS parses
 * from the first bytes of a connection, for HTTP and WebSocket alike. X-Forwarded-For is not read: uWS
 * frees the request object when the handler returns, so every caller would have to pass it in; a header
 * is appended hop by hop and spoofed by any client the proxy doesn't strip it from; and the PROXY
 * header covers every connection, not only HTTP requests.
 *
 * uWS accepts a PROXY header from anyone who sends one, so it is believed only when the TCP peer is one of
 * the proxies in PARLEY_TRUST_PROXY; otherwise the peer's own address is the client's.
 */
export type TrustedProxies = BlockList;

/** Parses PARLEY_TRUST_PROXY: comma-separated addresses and CIDR ranges, IPv4 or IPv6. Throws on a bad entry. */
export function parseTrustedProxies(spec: string): string[] {
  const entries = spec.split(',').map((s) => s.trim()).filter(Boolean);
  for (const e of entries) {
    const [addr, bits, extra] = e.split('/');
    const family = isIP(addr ?? '');
    const max = family === 4 ? 32 : 128;
    const okBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max);
    if (!family || !okBits || extra !== undefined) {
      throw new Error(`PARLEY_TRUST_PROXY: ${JSON.stringify(e)} is not an IP address or CIDR range (e.g. 10.0.0.0/8, 127.0.0.1, ::1)`);
    }
  }
  return entries;
}

/** The matcher for validated entries of parseTrustedProxies; undefined when no proxy is trusted. */
export function trustedProxies(entries: readonly string[]): TrustedProxies | undefined {
  if (entries.length === 0) return undefined;
  const list = new BlockList();
  for (const e of entries) {
    const [addr, bits] = e.split('/') as [string, string | undefined];
    const type = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}

/**
 * An address as uWS writes it ("0000:0000:…:ffff:7f00:0001" for IPv6) in its usual short form, and an
 * IPv4-mapped IPv6 address as plain IPv4: one client is one key in a per-address limit, whichever way the
 * node listens. Text that is no address comes back as it was.
 */
export function normalizeAddress(text: string): string {
  if (isIP(text) !== 6) return text;
  const short = new SocketAddress({ address: text, family: 'ipv6' }).address;
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(short);
  return v4 ? v4[1]! : short;
}

/**
 * The client's address: what a trusted proxy said (`proxied`, empty when the connection carried no PROXY
 * header), else the TCP peer. Pure; `peer` and `proxied` are uWS's text forms.
 */
export function clientAddress(peer: string, proxied: string, trusted: TrustedProxies | undefined): string {
  const p = normalizeAddress(peer);
  if (!trusted || !proxied || !isTrusted(p, trusted)) return p;
  return normalizeAddress(proxied);
}

function isTrusted(addr: string, trusted: TrustedProxies): boolean {
  const family = isIP(addr);
  return family !== 0 && trusted.check(addr, family === 4 ? 'ipv4' : 'ipv6');
}
