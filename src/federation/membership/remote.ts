/**
 * Membership in rooms and of users on other servers, as the rooms domain asks for it (RemoteRooms):
 *  - join a room this server is not in (joins.yaml, v2): make_join at a resident server, the
 *    template filled in and signed here, send_join, then the returned state and auth chain stored
 *    as outliers and the join with that state before it, all through the one inbound path; when
 *    the resident left members out, the room has partial state until partial-state.ts fills it;
 *  - leave a room this server is not in, i.e. reject an invite (leaving-v2.yaml): make_leave and
 *    send_leave at a resident server, then the leave stored on the state held here;
 *  - invite a user of another server (invites-v2.yaml): the invite event built here, signed by the
 *    invitee's server, then stored through the inbound path like any event made elsewhere;
 *  - fill in history from other servers (outbound/backfill.ts), and the event nearest a timestamp
 *    (outbound/timestamp-to-event.ts).
 * Resident servers are tried in the order given until one answers.
 */
import type { Logger } from 'pino';
import { finaliseEvent, type EventDraft } from '../../core/event-format.js';
import { encodeUnpaddedBase64 } from '../../core/base64.js';
import { computeEventId, computeReferenceHash } from '../../core/hashes.js';
import { serverNameOf } from '../../core/ids.js';
import { getRoomVersion, ROOM_VERSIONS, type RoomVersion } from '../../core/room-versions.js';
import type { SigningKey } from '../../core/signing.js';
import { stateKey, type JsonObject, type Pdu, type StateMap } from '../../core/types.js';
import { forbidden, MatrixError, notFound } from '../../http/errors.js';
import { buildLocalEvent } from '../../rooms/pipeline/build-event.js';
import type { RemoteRooms } from '../../rooms/remote-rooms.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import { FederationRequestError, type FederationClient } from '../client.js';
import { RemoteBackfill } from '../outbound/backfill.js';
import { askEventNearTimestamp } from '../outbound/timestamp-to-event.js';
import { exchangeThirdPartyInvite } from '../outbound/third-party-invite.js';
import { toStripped } from '../../rooms/stripped-hints.js';
import { inviteRoomState } from './stripped-state.js';

const SUPPORTED_VERSIONS = Object.keys(ROOM_VERSIONS);
/** Backfill pages (of 100 events) fetched at most to reach the event another server names for a timestamp. */
const TIMESTAMP_BACKFILL_PAGES = 5;

interface SendJoinAnswer {
  state?: unknown[];
  auth_chain?: unknown[];
  event?: unknown;
  members_omitted?: unknown;
  servers_in_room?: unknown;
}

/** The error a client sees when no server could be used: the remote's own Matrix error when it gave one. */
function asMatrixError(e: unknown, what: string): MatrixError {
  if (e instanceof MatrixError) return e;
  if (e instanceof FederationRequestError && e.status >= 400 && e.status < 500 && e.errcode !== undefined) {
    const body = e.body as { error?: unknown };
    return new MatrixError(e.status, e.errcode, typeof body.error === 'string' ? body.error : e.message);
  }
  return notFound(`${what}: ${(e as Error).message}`);
}

export class RemoteMembership implements RemoteRooms {
  private readonly history: RemoteBackfill;

  constructor(
    private readonly deps: {
      core: RoomsCore;
      client: FederationClient;
      serverName: string;
      signingKey: SigningKey;
      logger: Logger;
      now: () => number;
      /** Called after a join stored with partial state: the full state is fetched from then on. */
      joinedWithPartialState?: (roomId: string) => void;
    },
  ) {
    this.history = new RemoteBackfill(deps);
  }

  join(roomId: string, userId: string, servers: string[], content: JsonObject): Promise<void> {
    return this.throughAny('join', roomId, servers, (server) => this.joinThrough(server, roomId, userId, content));
  }

  async leave(roomId: string, userId: string, servers: string[], content: JsonObject): Promise<void> {
    try {
      await this.throughAny('leave', roomId, servers, (server) => this.leaveThrough(server, roomId, userId, content));
    } catch (e) {
      // No resident server took it (the room may be gone, the inviter may never have stored the
      // invite): an invite or knock held out of band is still answered here.
      if (!(await this.leaveOutOfBand(roomId, userId, content))) throw e;
    }
  }

  /**
   * A leave made here on top of the user's invite or knock held out of band (the only event of the
   * room known here for it): its prev and auth event. False when the membership is not held so.
   */
  private async leaveOutOfBand(roomId: string, userId: string, content: JsonObject): Promise<boolean> {
    const { core } = this.deps;
    const head = await core.heads.get(roomId);
    if (!head || head.extremities.length > 0) return false;
    const memberId = head.state.get(stateKey('m.room.member', userId));
    const member = memberId !== undefined ? await core.events.get(memberId) : undefined;
    if (!member || (member.pdu.content.membership !== 'invite' && member.pdu.content.membership !== 'knock')) return false;
    const version = head.version;
    const ref = version.eventIdFormat === 'v1' ? [member.eventId, { sha256: encodeUnpaddedBase64(computeReferenceHash(member.pdu, version)) }] : member.eventId;
    const draft = {
      room_id: roomId,
      sender: userId,
      type: 'm.room.member',
      state_key: userId,
      content: { ...content, membership: 'leave' },
      origin_server_ts: this.deps.now(),
      depth: member.pdu.depth + 1,
      prev_events: [ref],
      auth_events: [ref],
    } as unknown as EventDraft;
    const leave = finaliseEvent(draft, version, this.deps.serverName, this.deps.signingKey);
    const [result] = (await core.inbound.receive(roomId, { pdus: [leave.pdu], outOfBand: true })).filter((r) => r.eventId === leave.eventId);
    return result?.status === 'accepted' || result?.status === 'duplicate';
  }

  async exchangeThirdPartyInvite(roomId: string, sender: string, signed: JsonObject): Promise<void> {
    try {
      await exchangeThirdPartyInvite(this.deps.client, roomId, sender, signed);
    } catch (e) {
      throw asMatrixError(e, `The server of ${sender} did not issue the invite`);
    }
  }

  knock(roomId: string, userId: string, servers: string[], content: JsonObject): Promise<void> {
    return this.throughAny('knock', roomId, servers, (server) => this.knockThrough(server, roomId, userId, content));
  }

  /** Tries `attempt` with each server in turn until one succeeds. */
  private async throughAny(what: string, roomId: string, servers: string[], attempt: (server: string) => Promise<void>): Promise<void> {
    const candidates = [...new Set(servers)].filter((s) => s !== this.deps.serverName && s !== '');
    if (candidates.length === 0) throw notFound(`Room ${roomId} is not known to this server and no server to ${what} it through was given`);
    let lastError: unknown;
    for (const server of candidates) {
      try {
        await attempt(server);
        return;
      } catch (e) {
        lastError = e;
        this.deps.logger.info({ roomId, server, err: (e as Error).message }, `${what} through a server failed`);
        // A refusal by the room's rules is the room's answer: another server would give the same.
        if (e instanceof FederationRequestError && e.status === 403) break;
      }
    }
    throw asMatrixError(lastError, `Could not ${what} ${roomId}`);
  }

  /** make_leave / send_leave (leaving-v2.yaml); the leave is then stored on the state known here. */
  private async leaveThrough(server: string, roomId: string, userId: string, content: JsonObject): Promise<void> {
    const { client, core } = this.deps;
    const made = await client.request<{ event?: JsonObject; room_version?: string }>(server, {
      method: 'GET',
      path: `/_matrix/federation/v1/make_leave/${encodeURIComponent(roomId)}/${encodeURIComponent(userId)}`,
    });
    const version = typeof made.room_version === 'string' ? getRoomVersion(made.room_version) : getRoomVersion('1');
    if (!version) throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${String(made.room_version)} is not supported`);
    const leave = this.signTemplate(server, made.event, roomId, userId, version, 'leave', content);
    await client.request(server, {
      method: 'PUT',
      path: `/_matrix/federation/v2/send_leave/${encodeURIComponent(roomId)}/${encodeURIComponent(leave.eventId)}`,
      body: leave.pdu,
    });
    // The resident's history before the leave is not known here: the state before it is the one
    // held, or, when that holds too little to check it (an invite or knock held out of band), none.
    const head = await core.requireHead(roomId);
    let [result] = (await core.inbound.receive(roomId, { pdus: [leave.pdu], stateBefore: new Map([[leave.eventId, head.state]]) })).filter((r) => r.eventId === leave.eventId);
    if (result?.status === 'missing' || (result?.status === 'rejected' && !head.state.has(stateKey('m.room.create', '')))) {
      [result] = (await core.inbound.receive(roomId, { pdus: [leave.pdu], outOfBand: true })).filter((r) => r.eventId === leave.eventId);
    }
    if (result?.status !== 'accepted' && result?.status !== 'duplicate') {
      this.deps.logger.warn({ roomId, eventId: leave.eventId, status: result?.status }, 'a leave accepted by the resident server could not be stored here');
    }
  }

  /**
   * make_knock / send_knock (knocks.yaml). This server holds none of the room: the knock is held
   * out of band, with the `knock_room_state` the resident sent as the stripped state the user sees.
   */
  private async knockThrough(server: string, roomId: string, userId: string, content: JsonObject): Promise<void> {
    const { client, core } = this.deps;
    const ver = SUPPORTED_VERSIONS.map((v) => `ver=${encodeURIComponent(v)}`).join('&');
    const made = await client.request<{ event?: JsonObject; room_version?: string }>(server, {
      method: 'GET',
      path: `/_matrix/federation/v1/make_knock/${encodeURIComponent(roomId)}/${encodeURIComponent(userId)}?${ver}`,
    });
    const version = typeof made.room_version === 'string' ? getRoomVersion(made.room_version) : undefined;
    if (!version?.knockingSupported) throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${String(made.room_version)} does not support knocking here`);
    const knock = this.signTemplate(server, made.event, roomId, userId, version, 'knock', content);
    const answer = await client.request<{ knock_room_state?: unknown; knock_state_events?: unknown }>(server, {
      method: 'PUT',
      path: `/_matrix/federation/v1/send_knock/${encodeURIComponent(roomId)}/${encodeURIComponent(knock.eventId)}`,
      body: knock.pdu,
    });
    // Servers that implemented the proposal (MSC2403) before the spec named it answer `knock_state_events`.
    const hints = toStripped(answer.knock_room_state ?? answer.knock_state_events);
    const create = hints.find((e) => e.type === 'm.room.create' && e.state_key === '');
    const creator = create && !version.implicitRoomCreator && typeof create.content.creator === 'string' ? create.content.creator : create?.sender;
    const results = await core.inbound.receive(roomId, { pdus: [knock.pdu], outOfBand: true, strippedState: hints }, { roomVersion: version.id, creator });
    const mine = results.find((r) => r.eventId === knock.eventId);
    if (mine?.status !== 'accepted' && mine?.status !== 'duplicate') {
      throw new Error(`the knock was not stored here: ${mine?.status ?? 'unknown'}${mine && 'reason' in mine && mine.reason ? ` (${mine.reason})` : ''}`);
    }
  }

  /** A make_join / make_leave / make_knock template checked, completed with `content`, and signed here. */
  private signTemplate(server: string, tmpl: JsonObject | undefined, roomId: string, userId: string, version: RoomVersion, membership: 'join' | 'leave' | 'knock', content: JsonObject) {
    if (typeof tmpl !== 'object' || tmpl === null || tmpl.room_id !== roomId || tmpl.sender !== userId || tmpl.state_key !== userId || tmpl.type !== 'm.room.member') {
      throw new Error(`${server} answered make_${membership} with an unusable template`);
    }
    const { signatures: _s, hashes: _h, event_id: _e, unsigned: _u, ...rest } = tmpl;
    void [_s, _h, _e, _u];
    const tmplContent = typeof tmpl.content === 'object' && tmpl.content !== null && !Array.isArray(tmpl.content) ? (tmpl.content as JsonObject) : {};
    const draft = { ...rest, origin_server_ts: this.deps.now(), content: { ...tmplContent, ...content, membership } } as unknown as EventDraft;
    return finaliseEvent(draft, version, this.deps.serverName, this.deps.signingKey);
  }

  private async joinThrough(server: string, roomId: string, userId: string, content: JsonObject): Promise<void> {
    const { client, core } = this.deps;
    const ver = SUPPORTED_VERSIONS.map((v) => `ver=${encodeURIComponent(v)}`).join('&');
    const made = await client.request<{ event?: JsonObject; room_version?: string }>(server, {
      method: 'GET',
      path: `/_matrix/federation/v1/make_join/${encodeURIComponent(roomId)}/${encodeURIComponent(userId)}?${ver}`,
    });
    const version = typeof made.room_version === 'string' ? getRoomVersion(made.room_version) : getRoomVersion('1');
    if (!version) throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${String(made.room_version)} is not supported`);
    const join = this.signTemplate(server, made.event, roomId, userId, version, 'join', content);

    // Members may be left out (MSC3706, spec v1.6): the user can use the room once the join is
    // stored, and the full state is fetched afterwards (partial-state.ts).
    const answer = await client.request<SendJoinAnswer>(server, {
      method: 'PUT',
      path: `/_matrix/federation/v2/send_join/${encodeURIComponent(roomId)}/${encodeURIComponent(join.eventId)}?omit_members=true`,
      body: join.pdu,
      timeoutMs: 120_000,
      maxBytes: 256 * 1024 * 1024,
    });
    const state = Array.isArray(answer.state) ? answer.state : [];
    const authChain = Array.isArray(answer.auth_chain) ? answer.auth_chain : [];
    // A resident server that countersigned the join (restricted rooms) sends it back; it is the same event.
    const returned = answer.event as Pdu | undefined;
    const joinPdu = returned && typeof returned === 'object' && safeEventId(returned, version) === join.eventId ? returned : join.pdu;

    const stateBefore: StateMap = new Map();
    for (const raw of state) {
      const ev = raw as Pdu;
      if (typeof ev?.type !== 'string' || typeof ev.state_key !== 'string') continue;
      const id = safeEventId(ev, version);
      if (id !== undefined) stateBefore.set(stateKey(ev.type, ev.state_key), id);
    }
    // The server joined through comes first among those the full state is asked from.
    const partialState =
      answer.members_omitted === true
        ? { joinEventId: join.eventId, servers: [...new Set([server, ...(Array.isArray(answer.servers_in_room) ? answer.servers_in_room : []).filter((s): s is string => typeof s === 'string' && s !== this.deps.serverName)])] }
        : undefined;
    const results = await core.inbound.receive(
      roomId,
      { outliers: [...authChain, ...state], pdus: [joinPdu], stateBefore: new Map([[join.eventId, stateBefore]]), partialState },
      { roomVersion: version.id },
    );
    const mine = results.find((r) => r.eventId === join.eventId);
    if (mine?.status !== 'accepted' && mine?.status !== 'duplicate') {
      const reason = mine && 'reason' in mine ? mine.reason : undefined;
      throw new Error(`the join was not accepted here: ${mine?.status ?? 'unknown'}${reason ? ` (${reason})` : ''}${mine?.status === 'missing' ? ` ${JSON.stringify(mine.missing)}` : ''}`);
    }
    if (partialState && mine.status === 'accepted') this.deps.joinedWithPartialState?.(roomId);
  }

  backfill(roomId: string, limit: number): Promise<boolean> {
    return this.history.run(roomId, limit);
  }

  /**
   * The closer event another server names is brought here by backfilling towards it, a few pages
   * at most: history fetched that way takes its place below what is held (an event fetched alone,
   * with no child held, would be taken for a new one). Null when it is not reached.
   */
  async eventNearTimestamp(roomId: string, ts: number, dir: 'f' | 'b', than: number | null): Promise<string | null> {
    const eventId = await askEventNearTimestamp(this.deps, roomId, ts, dir, than);
    if (eventId === null) return null;
    for (let page = 0; ; page++) {
      if ((await this.deps.core.events.get(eventId))?.stateGroup != null) return eventId;
      if (page === TIMESTAMP_BACKFILL_PAGES || !(await this.history.run(roomId, 100))) return null;
    }
  }

  async invite(roomId: string, inviter: string, target: string, content: JsonObject): Promise<void> {
    const { core, client } = this.deps;
    const head = await core.requireHead(roomId);
    const built = await buildLocalEvent(core.ctx, head, { type: 'm.room.member', stateKey: target, sender: inviter, content }, (ids) => core.events.getMany(ids));
    if (!built.auth.allowed) throw forbidden(built.auth.reason);
    const destination = serverNameOf(target)!;
    const answer = await client
      .request<{ event?: Pdu }>(destination, {
        method: 'PUT',
        path: `/_matrix/federation/v2/invite/${encodeURIComponent(roomId)}/${encodeURIComponent(built.eventId)}`,
        body: { room_version: head.version.id, event: built.pdu, invite_room_state: await inviteRoomState(core, head, built.pdu) },
      })
      .catch((e: unknown) => {
        throw asMatrixError(e, `${destination} did not take the invite`);
      });
    const signed = answer.event;
    if (!signed || typeof signed !== 'object' || safeEventId(signed, head.version) !== built.eventId || !signed.signatures?.[destination]) {
      throw new MatrixError(502, 'M_UNKNOWN', `${destination} answered the invite with another event`);
    }
    const [result] = (await core.inbound.receive(roomId, { pdus: [signed] })).filter((r) => r.eventId === built.eventId);
    if (result?.status !== 'accepted' && result?.status !== 'duplicate') {
      throw forbidden(`The invite was not accepted: ${result && 'reason' in result ? result.reason : result?.status}`);
    }
  }
}

function safeEventId(pdu: Pdu, version: NonNullable<ReturnType<typeof getRoomVersion>>): string | undefined {
  try {
    return computeEventId(pdu, version);
  } catch {
    return undefined;
  }
}
