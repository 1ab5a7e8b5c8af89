import type { ApiResponse, TestServer, TestUser } from '../helpers/server.js';

/**
 * A sliding-sync client written from MSC4186: it keeps the connection's
 * `pos`, merges room results (`initial` replaces what it knew of a room,
 * anything else updates it), orders rooms by `bump_stamp`, and starts the
 * connection over when the server answers M_UNKNOWN_POS.
 */

export const SS_PATH = '/_matrix/client/unstable/org.matrix.simplified_msc3575/sync';

export interface ClientRoom {
  name?: string | null;
  bump_stamp?: number;
  membership?: string;
  timeline: any[];
  required_state: any[];
  [key: string]: unknown;
}

export class SlidingClient {
  pos: string | null = null;
  readonly rooms = new Map<string, ClientRoom>();
  counts: Record<string, number> = {};
  /** The last raw response body. */
  last: any = null;
  /** How many times the connection was started over after M_UNKNOWN_POS. */
  restarts = 0;

  constructor(
    private readonly server: TestServer,
    readonly user: TestUser,
    readonly connId = 'main',
  ) {}

  /** One request with the current pos; the raw answer. */
  raw(body: Record<string, unknown>, timeout = 0): Promise<ApiResponse> {
    const q = new URLSearchParams();
    if (this.pos !== null) q.set('pos', this.pos);
    q.set('timeout', String(timeout));
    return this.server.request('POST', `${SS_PATH}?${q}`, { token: this.user.accessToken, body: { conn_id: this.connId, ...body } });
  }

  /** A request whose answer is applied; recovers from an expired connection by starting over. */
  async sync(body: Record<string, unknown>, timeout = 0): Promise<any> {
    let res = await this.raw(body, timeout);
    if (res.status === 400 && res.body.errcode === 'M_UNKNOWN_POS') {
      // MSC4186 "Connections": the server expired the connection; start a new one from scratch.
      this.restarts++;
      this.pos = null;
      this.rooms.clear();
      this.counts = {};
      res = await this.raw(body, 0);
    }
    if (res.status !== 200) throw new Error(`sliding sync ${res.status}: ${JSON.stringify(res.body)}`);
    this.apply(res.body);
    return res.body;
  }

  private apply(body: any): void {
    this.last = body;
    this.pos = body.pos;
    for (const [name, l] of Object.entries<any>(body.lists ?? {})) this.counts[name] = l.count;
    for (const [roomId, r] of Object.entries<any>(body.rooms ?? {})) {
      const old = r.initial ? undefined : this.rooms.get(roomId);
      const room: ClientRoom = { ...(old ?? {}), ...r, timeline: [...(old?.timeline ?? []), ...(r.timeline ?? [])], required_state: old?.required_state ?? [] };
      for (const ev of r.required_state ?? []) {
        room.required_state = room.required_state.filter((e) => !(e.type === ev.type && e.state_key === ev.state_key));
        // A StateStub (no content) says the state was removed.
        if (ev.content !== undefined) room.required_state.push(ev);
      }
      this.rooms.set(roomId, room);
    }
  }

  /** Room ids by recency, newest first (the order a client shows). */
  order(): string[] {
    return [...this.rooms.entries()].sort((a, b) => (b[1].bump_stamp ?? 0) - (a[1].bump_stamp ?? 0)).map(([id]) => id);
  }
}
