/**
 * The resident server's membership endpoints (joins.yaml, leaving.yaml, knocks.yaml): make_join
 * and send_join (v2, with `omit_members`: join-answer.ts), make_leave and send_leave (v2),
 * make_knock and send_knock.
 */
import { computeEventId } from '../../core/hashes.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import { acceptMembership } from '../membership/accept.js';
import { joinAnswer } from '../membership/join-answer.js';
import { inviteRoomState } from '../membership/stripped-state.js';
import { membershipTemplate } from '../membership/template.js';
import type { FederationSender } from '../outbound/sender.js';
import type { RoomReads } from '../room-reads.js';
import type { FederationRoute } from '../router.js';

const verQuery = { type: 'object', properties: { ver: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] } } };

export function membershipRoutes(deps: { core: RoomsCore; sender: FederationSender; reads: RoomReads; serverName: string; now: () => number }): FederationRoute[] {
  return [
    {
      method: 'GET',
      url: '/_matrix/federation/v1/make_join/:roomId/:userId',
      schema: { querystring: verQuery },
      handler: (req) => {
        const ver = req.query.ver as string | string[] | undefined;
        // Without `ver`, the joining server supports version 1 only (joins.yaml).
        const supported = ver === undefined ? ['1'] : Array.isArray(ver) ? ver : [ver];
        return membershipTemplate(deps.core, { origin: req.origin, roomId: req.params.roomId, userId: req.params.userId, membership: 'join', supportedVersions: supported, now: deps.now() });
      },
    },
    {
      method: 'GET',
      url: '/_matrix/federation/v1/make_leave/:roomId/:userId',
      handler: (req) => membershipTemplate(deps.core, { origin: req.origin, roomId: req.params.roomId, userId: req.params.userId, membership: 'leave', now: deps.now() }),
    },
    {
      method: 'PUT',
      url: '/_matrix/federation/v2/send_join/:roomId/:eventId',
      schema: { querystring: { type: 'object', properties: { omit_members: { anyOf: [{ type: 'boolean' }, { type: 'string' }] } } } },
      handler: async (req) => {
        const omit = req.query.omit_members;
        const join = await acceptMembership(deps, { origin: req.origin, roomId: req.params.roomId, eventId: req.params.eventId, body: req.body, membership: 'join' });
        return joinAnswer(deps, join, omit === true || omit === 'true');
      },
    },
    {
      method: 'GET',
      url: '/_matrix/federation/v1/make_knock/:roomId/:userId',
      schema: { querystring: { ...verQuery, required: ['ver'] } },
      handler: (req) => {
        const ver = req.query.ver as string | string[];
        return membershipTemplate(deps.core, { origin: req.origin, roomId: req.params.roomId, userId: req.params.userId, membership: 'knock', supportedVersions: Array.isArray(ver) ? ver : [ver], now: deps.now() });
      },
    },
    {
      method: 'PUT',
      url: '/_matrix/federation/v1/send_knock/:roomId/:eventId',
      handler: async (req) => {
        const knock = await acceptMembership(deps, { origin: req.origin, roomId: req.params.roomId, eventId: req.params.eventId, body: req.body, membership: 'knock' });
        const head = await deps.core.requireHead(req.params.roomId);
        // Full PDUs (spec v1.16): the room's create event and the state a client shows, and the knock's auth events.
        const state = (await inviteRoomState(deps.core, head, knock.pdu)).filter((ev) => computeEventId(ev, head.version) !== knock.eventId);
        // `knock_state_events`: the name servers implementing the proposal (MSC2403) read, as Synapse 1.67 does.
        return { knock_room_state: state, knock_state_events: state };
      },
    },
    {
      method: 'PUT',
      url: '/_matrix/federation/v2/send_leave/:roomId/:eventId',
      handler: async (req) => {
        await acceptMembership(deps, { origin: req.origin, roomId: req.params.roomId, eventId: req.params.eventId, body: req.body, membership: 'leave' });
        return {};
      },
    },
  ];
}
