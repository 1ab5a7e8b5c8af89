/**
 * Identifier grammars (spec: appendices, "Identifier Grammar") and the room
 * version specific event/room id formats (rooms/v1..v12, "Event IDs").
 */

import { Buffer } from 'node:buffer';
import type { RoomVersion } from './room-versions.js';

/** The spec caps user ids, room ids, room aliases and event ids at 255 bytes of UTF-8. */
export const MAX_ID_BYTES = 255;

export interface ParsedServerName {
  /** DNS name or dotted quad as written; for IPv6 the address without brackets. */
  host: string;
  port?: number;
  kind: 'dns' | 'ipv4' | 'ipv6';
}

const DNS_NAME = /^[A-Za-z0-9.-]{1,255}$/;
const DOTTED_NUMBERS = /^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/;
const ALL_DIGITS_AND_DOTS = /^[0-9.]+$/;
const PORT = /^[0-9]{1,5}$/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]{2,45}$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;

const STRICT_LOCALPART = /^[a-z0-9._=\-/+]+$/;
/** Historical localparts: anything but ':' and NUL (lone surrogates are rejected separately). */
const HISTORICAL_LOCALPART = /^[^:\u0000]*$/;
/** 32-byte sha256 as unpadded Base64 is 43 characters, the last one carrying 2 zero bits. */
const HASH_STANDARD = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]$/;
const HASH_URL_SAFE = /^[A-Za-z0-9\-_]{42}[AEIMQUYcgkosw048]$/;

export function parseServerName(name: string): ParsedServerName | undefined {
  let hostPart: string;
  let portPart: string | undefined;
  if (name.startsWith('[')) {
    const close = name.indexOf(']');
    if (close < 0) return undefined;
    hostPart = name.slice(0, close + 1);
    const rest = name.slice(close + 1);
    if (rest !== '') {
      if (rest[0] !== ':') return undefined;
      portPart = rest.slice(1);
    }
  } else {
    const colon = name.lastIndexOf(':');
    hostPart = colon < 0 ? name : name.slice(0, colon);
    if (colon >= 0) portPart = name.slice(colon + 1);
  }

  let port: number | undefined;
  if (portPart !== undefined) {
    if (!PORT.test(portPart)) return undefined;
    port = Number(portPart);
    if (port > 65535) return undefined;
  }

  if (hostPart.startsWith('[')) {
    const addr = hostPart.slice(1, -1);
    return isIPv6(addr) ? withPort({ host: addr, kind: 'ipv6' }, port) : undefined;
  }
  if (DOTTED_NUMBERS.test(hostPart)) {
    return isIPv4(hostPart) ? withPort({ host: hostPart, kind: 'ipv4' }, port) : undefined;
  }
  // Numbers and dots that are not a valid dotted quad ("1.2.3.999", "1.2.3")
  // fit the dns-name production but are neither an address nor a hostname.
  if (!DNS_NAME.test(hostPart) || ALL_DIGITS_AND_DOTS.test(hostPart)) return undefined;
  return withPort({ host: hostPart, kind: 'dns' }, port);
}

function withPort(p: ParsedServerName, port: number | undefined): ParsedServerName {
  if (port !== undefined) p.port = port;
  return p;
}

export function isValidServerName(name: string): boolean {
  return parseServerName(name) !== undefined;
}

function isIPv4(s: string): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > 255) return false;
  }
  return true;
}

/** RFC 3513 section 2.2 text forms: full, "::"-compressed, and with an embedded IPv4 tail. */
function isIPv6(s: string): boolean {
  if (!IPV6_CHARS.test(s)) return false;
  let hex = s;
  let maxGroups = 8;
  if (s.includes('.')) {
    const lastColon = s.lastIndexOf(':');
    if (lastColon < 0 || !isIPv4(s.slice(lastColon + 1))) return false;
    // The IPv4 tail stands for the last two groups.
    maxGroups = 6;
    hex = s.slice(0, lastColon + 1);
    if (!hex.endsWith('::')) hex = hex.slice(0, -1);
  }
  const gap = hex.indexOf('::');
  if (gap < 0) return hexGroups(hex.split(':')) && hex.split(':').length === maxGroups;
  if (hex.indexOf('::', gap + 1) >= 0) return false;
  const left = hex.slice(0, gap);
  const right = hex.slice(gap + 2);
  const l = left === '' ? [] : left.split(':');
  const r = right === '' ? [] : right.split(':');
  return l.length + r.length < maxGroups && hexGroups(l) && hexGroups(r);
}

function hexGroups(groups: string[]): boolean {
  return groups.every((g) => HEX_GROUP.test(g));
}

/** UTF-8 length check without encoding: a UTF-16 code unit is never fewer bytes than one. */
function fitsIdLimit(id: string): boolean {
  return id.length <= MAX_ID_BYTES && Buffer.byteLength(id, 'utf8') <= MAX_ID_BYTES;
}

/** Splits `&localpart:server` at the first colon; localparts never contain one. */
function splitSigiled(id: string, sigil: string): [string, string] | undefined {
  if (id[0] !== sigil) return undefined;
  const colon = id.indexOf(':');
  if (colon < 0) return undefined;
  return [id.slice(1, colon), id.slice(colon + 1)];
}

/** The strict localpart grammar for ids this server creates (spec v1.8+). */
export function isValidLocalpart(localpart: string, serverName?: string): boolean {
  if (!STRICT_LOCALPART.test(localpart)) return false;
  return serverName === undefined || fitsIdLimit(`@${localpart}:${serverName}`);
}

// String.prototype.isWellFormed is in Node 20 but not in the ES2023 lib typings.
/** Historical localparts are still accepted in events over federation (spec: "Historical User IDs"). */
function isHistoricalLocalpart(localpart: string): boolean {
  return HISTORICAL_LOCALPART.test(localpart) && (localpart as unknown as { isWellFormed(): boolean }).isWellFormed();
}

export function isValidUserId(id: string, opts: { historical?: boolean } = {}): boolean {
  if (!fitsIdLimit(id)) return false;
  const parts = splitSigiled(id, '@');
  if (parts === undefined) return false;
  const [localpart, server] = parts;
  const localOk = opts.historical ? isHistoricalLocalpart(localpart) : STRICT_LOCALPART.test(localpart);
  return localOk && isValidServerName(server);
}

/** A non-empty opaque part as room ids, aliases and v1/v2 event ids allow it. */
function isOpaqueLocalpart(s: string): boolean {
  return s.length > 0 && isHistoricalLocalpart(s);
}

function isDomainScoped(id: string, sigil: string): boolean {
  if (!fitsIdLimit(id)) return false;
  const parts = splitSigiled(id, sigil);
  return parts !== undefined && isOpaqueLocalpart(parts[0]) && isValidServerName(parts[1]);
}

function isHashId(id: string, sigil: string, urlSafe: boolean): boolean {
  return id.length === 44 && id[0] === sigil && (urlSafe ? HASH_URL_SAFE : HASH_STANDARD).test(id.slice(1));
}

/**
 * Without a version, any form some room version allows is accepted:
 * `!opaque:server` (v1-v11) or `!` + url-safe reference hash (v12+).
 */
export function isValidRoomId(id: string, version?: RoomVersion): boolean {
  if (version === undefined) return isDomainScoped(id, '!') || isHashId(id, '!', true);
  return version.roomIdIsCreateEventHash ? isHashId(id, '!', true) : isDomainScoped(id, '!');
}

/**
 * Without a version, any of the three event id formats is accepted: `$opaque:server`
 * (v1/v2), standard Base64 hash (v3) or url-safe hash (v4+).
 */
export function isValidEventId(id: string, version?: RoomVersion): boolean {
  const format = version?.eventIdFormat;
  if (format === 'v1') return isDomainScoped(id, '$');
  if (format === 'v3') return isHashId(id, '$', false);
  if (format === 'v4') return isHashId(id, '$', true);
  return isDomainScoped(id, '$') || isHashId(id, '$', false) || isHashId(id, '$', true);
}

export function isValidRoomAlias(alias: string): boolean {
  return isDomainScoped(alias, '#');
}

/**
 * The server part of `@user:server`, `!room:server`, `#alias:server` or
 * `$event:server`; undefined for hash-based room and event ids, which carry none.
 */
export function serverNameOf(id: string): string | undefined {
  const colon = id.indexOf(':');
  return colon < 0 ? undefined : id.slice(colon + 1);
}

export function localpartOf(userId: string): string | undefined {
  const parts = splitSigiled(userId, '@');
  return parts?.[0];
}
