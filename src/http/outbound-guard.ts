/**
 * Which addresses the server may connect to on a user's behalf (URL previews now; federation and
 * push later). Only global unicast addresses pass: loopback, private (10/8, 172.16/12,
 * 192.168/16, fc00::/7), link-local, CGNAT (100.64/10), 0.0.0.0/8, multicast, broadcast, the
 * reserved and documentation ranges, and IPv4 addresses hidden in IPv6 (::ffff:a.b.c.d, NAT64,
 * 6to4, Teredo) are refused, unless an operator allowed them by CIDR.
 *
 * The check runs on the address actually connected to: `guardedLookup` is the DNS lookup handed to
 * the socket, so a name that resolves to a public address when checked and to a private one when
 * connecting (DNS rebinding) cannot slip through.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

export class OutboundRefused extends Error {
  constructor(readonly address: string, readonly reason: string) {
    super(`Refusing to connect to ${address}: ${reason}`);
  }
}

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

export interface OutboundGuard {
  /** Throws OutboundRefused unless `address` (an IP literal) may be connected to. */
  check(address: string): void;
  /** A socket `lookup` that resolves, checks every address, and hands the socket only checked ones. */
  lookup: LookupFunction;
}

/** Parses "10.0.0.0/8, ::1/128" style lists; throws on a malformed entry. */
export function parseCidrs(list: readonly string[]): Cidr[] {
  return list
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const [addr, prefix] = s.includes('/') ? ipaddr.parseCIDR(s) : [ipaddr.parse(s), -1];
      const range = ipaddr.process(addr.toString());
      const bits = prefix === -1 ? (range.kind() === 'ipv4' ? 32 : 128) : prefix;
      // An IPv4-mapped CIDR (::ffff:10.0.0.0/104) is kept as its IPv4 form.
      if (range.kind() === 'ipv4' && addr.kind() === 'ipv6') return [range, Math.max(0, bits - 96)] as Cidr;
      return [addr, bits] as Cidr;
    });
}

/** True when `list` is a list of valid CIDRs or addresses (for config validation). */
export function isCidrList(list: readonly string[]): boolean {
  try {
    parseCidrs(list);
    return true;
  } catch {
    return false;
  }
}

/** The CIDRs in `HEARTH_OUTBOUND_ALLOW` (comma-separated). */
export function outboundAllowFromEnv(env: Record<string, string | undefined> = process.env): string[] {
  return (env.HEARTH_OUTBOUND_ALLOW ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** Why `address` is refused, or undefined when it may be connected to. */
export function refusalReason(address: string, allow: readonly Cidr[] = []): string | undefined {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  // process() turns ::ffff:a.b.c.d into a.b.c.d, so a mapped address is judged as the IPv4 one.
  const ip = ipaddr.process(address);
  if (allow.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits))) return undefined;
  const range = ip.range();
  return range === 'unicast' ? undefined : `${range} address`;
}

export function createOutboundGuard(allowList: readonly string[] = []): OutboundGuard {
  const allow = parseCidrs(allowList);
  const check = (address: string) => {
    const reason = refusalReason(address, allow);
    if (reason) throw new OutboundRefused(address, reason);
  };
  const lookup = ((hostname: string, options: { all?: boolean; family?: number } | number, callback: (...a: unknown[]) => void) => {
    const opts = typeof options === 'number' ? { family: options } : options ?? {};
    const cb = (typeof options === 'function' ? options : callback) as (...a: unknown[]) => void;
    const literal = hostname.replace(/^\[(.*)\]$/, '$1');
    const resolved = (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => {
      if (err) return cb(err);
      try {
        // Every address must pass: a name that mixes public and private addresses is refused.
        for (const a of addresses) check(a.address);
      } catch (e) {
        return cb(e);
      }
      if (addresses.length === 0) return cb(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }));
      if (opts.all) cb(null, addresses);
      else cb(null, addresses[0].address, addresses[0].family);
    };
    if (isIP(literal)) return resolved(null, [{ address: literal, family: isIP(literal) }]);
    dnsLookup(hostname, { all: true, family: opts.family ?? 0 }, resolved);
  }) as LookupFunction;
  return { check, lookup };
}
