/**
 * Server ACLs (spec: client-server API "Server Access Control Lists", server-server API "Server
 * Access Control Lists"): whether a room's current `m.room.server_acl` lets a server take part.
 * The server name is matched without its port; `deny` wins over `allow`; an absent `allow` allows
 * no one; IP literals are refused when `allow_ip_literals` is false. Globs use `*` and `?`.
 */
import { stateKey, type JsonObject } from '../core/types.js';
import type { RoomsCore } from '../rooms/room-core.js';

const ACL_KEY = stateKey('m.room.server_acl', '');

interface CompiledAcl {
  allow: RegExp[];
  deny: RegExp[];
  allowIpLiterals: boolean;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

function globs(v: unknown): RegExp[] {
  return Array.isArray(v) ? v.filter((g): g is string => typeof g === 'string').map(globToRegExp) : [];
}

export function compileAcl(content: JsonObject): CompiledAcl {
  return { allow: globs(content.allow), deny: globs(content.deny), allowIpLiterals: content.allow_ip_literals !== false };
}

/** The host part of a server name: no port, IPv6 brackets kept. */
function hostOf(server: string): string {
  if (server.startsWith('[')) return server.slice(0, server.indexOf(']') + 1);
  const colon = server.lastIndexOf(':');
  return colon >= 0 ? server.slice(0, colon) : server;
}

export function aclAllows(acl: CompiledAcl, server: string): boolean {
  const host = hostOf(server);
  const isIp = host.startsWith('[') || /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
  if (isIp && !acl.allowIpLiterals) return false;
  if (acl.deny.some((r) => r.test(host))) return false;
  return acl.allow.some((r) => r.test(host));
}

export class ServerAcls {
  private readonly compiled = new Map<string, CompiledAcl>();

  constructor(private readonly core: RoomsCore) {}

  /** Whether the room's current ACL lets `server` in (rooms unknown here or without an ACL: yes). */
  async allows(server: string, roomId: string): Promise<boolean> {
    const head = await this.core.heads.get(roomId);
    const id = head?.state.get(ACL_KEY);
    if (id === undefined) return true;
    let acl = this.compiled.get(id);
    if (!acl) {
      const ev = await this.core.events.get(id);
      if (!ev) return true;
      acl = compileAcl(ev.pdu.content);
      if (this.compiled.size > 1000) this.compiled.clear();
      this.compiled.set(id, acl);
    }
    return aclAllows(acl, server);
  }
}
