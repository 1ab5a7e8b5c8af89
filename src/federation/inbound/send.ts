/**
 * `PUT /_matrix/federation/v1/send/{txnId}` (transactions.yaml): a transaction of PDUs and EDUs
 * from an authenticated origin.
 *   1. The body's `origin` must be the authenticated origin (else 403), and a transaction holds at
 *      most 50 PDUs and 100 EDUs (spec: "Transactions"), else 400; either way nothing is processed.
 *   2. A transaction id already processed for this origin is answered as it was the first time.
 *   3. PDUs are grouped by room; each room's PDUs go to the inbound path in one call, rooms in
 *      parallel, gaps before them filled from the origin (fill-gaps.ts). PDUs of a room whose
 *      server ACL denies the origin are answered with an error and ignored. Each PDU is answered `{}` (accepted, soft-failed, already known, stored as an
 *      outlier) or `{error}` (rejected, dropped, prev/auth events missing, room unknown here).
 *      In a room that uses a Policy Server, PDUs without its valid signature are first sent to it
 *      to be signed again (policy/re-sign.ts).
 *   4. EDUs (edus.ts): typing, receipts and presence are applied; device list, signing key and
 *      to-device EDUs go to the e2ee domain; other EDU types are ignored.
 * The answer is recorded with the transaction id only after every room's events are committed.
 */
import type { Logger } from 'pino';
import { computeEventId } from '../../core/hashes.js';
import { getRoomVersion, type RoomVersion } from '../../core/room-versions.js';
import type { Pdu } from '../../core/types.js';
import type { Db } from '../../db/schema.js';
import { MatrixError } from '../../http/errors.js';
import { holdMembershipChanges } from './out-of-band.js';
import { UnknownRoomError, type InboundResult } from '../../rooms/inbound/receive.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import type { ServerAcls } from '../acl.js';
import type { FederationClient } from '../client.js';
import { askPolicyServerAgain } from '../policy/re-sign.js';
import { handleEdus, type EduSinks } from './edus.js';
import { receiveFillingGaps } from './fill-gaps.js';
import { insertTxnResponse, selectTxnResponse } from '../received-txns-table.js';
import type { FederationRoute } from '../router.js';

export const MAX_PDUS = 50;
export const MAX_EDUS = 100;

type PduAnswer = Record<string, never> | { error: string };

/** Room versions 4 and later share the event id format: the best guess for a room not known here. */
const GUESS_VERSION = getRoomVersion('10')!;

function eventIdOf(raw: unknown, version: RoomVersion | null): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const pdu = raw as Pdu;
  if (typeof pdu.event_id === 'string') return pdu.event_id;
  try {
    return computeEventId(pdu, version ?? GUESS_VERSION);
  } catch {
    return undefined;
  }
}

function answerFor(r: InboundResult): PduAnswer {
  switch (r.status) {
    case 'accepted':
    case 'soft_failed':
    case 'outlier':
    case 'duplicate':
      return {};
    case 'missing':
      return { error: `missing events: ${(r.missing ?? []).join(', ')}` };
    default:
      return { error: r.reason ?? r.status };
  }
}

export function sendTransactionRoute(deps: { db: Db; core: RoomsCore; client: FederationClient; acls: ServerAcls; eduSinks: EduSinks; logger: Logger; now: () => number }): FederationRoute {
  return {
    method: 'PUT',
    url: '/_matrix/federation/v1/send/:txnId',
    // 50 PDUs of at most 64 KiB each, and EDUs.
    bodyLimit: 8 * 1024 * 1024,
    schema: {
      body: {
        type: 'object',
        required: ['pdus'],
        properties: { origin: { type: 'string' }, origin_server_ts: { type: 'integer' }, pdus: { type: 'array' }, edus: { type: 'array' } },
      },
    },
    handler: async (req) => {
      const { origin } = req;
      const txnId = req.params.txnId as string;
      const pdus = req.body.pdus as unknown[];
      const edus = (req.body.edus ?? []) as unknown[];
      if (typeof req.body.origin === 'string' && req.body.origin !== origin) {
        throw new MatrixError(403, 'M_FORBIDDEN', `The transaction claims to come from ${req.body.origin}, but the request was signed by ${origin}`);
      }
      if (pdus.length > MAX_PDUS || edus.length > MAX_EDUS) {
        throw new MatrixError(400, 'M_BAD_JSON', `A transaction holds at most ${MAX_PDUS} PDUs and ${MAX_EDUS} EDUs`);
      }
      const earlier = await selectTxnResponse(deps.db, origin, txnId);
      if (earlier !== undefined) return earlier;

      const byRoom = new Map<string, unknown[]>();
      for (const raw of pdus) {
        const roomId = (raw as { room_id?: unknown } | null)?.room_id;
        if (typeof roomId !== 'string') continue;
        let list = byRoom.get(roomId);
        if (!list) byRoom.set(roomId, (list = []));
        list.push(raw);
      }
      const answers: Record<string, PduAnswer> = {};
      await Promise.all(
        [...byRoom].map(async ([roomId, raws]) => {
          const version = await deps.core.versionOf(roomId);
          const unknown = () => {
            for (const raw of raws) {
              const id = eventIdOf(raw, version);
              if (id !== undefined) answers[id] = { error: `Room ${roomId} is not known to this server` };
            }
          };
          if (!version) return unknown();
          if (!(await deps.acls.allows(origin, roomId))) {
            for (const raw of raws) {
              const id = eventIdOf(raw, version);
              if (id !== undefined) answers[id] = { error: 'The room’s server ACL denies your server' };
            }
            return;
          }
          let results: InboundResult[];
          try {
            const checked = await askPolicyServerAgain(deps.core, deps.core.pipeline.policySigner, roomId, version, raws);
            results = await receiveFillingGaps(deps, origin, roomId, version, checked);
            results = await holdMembershipChanges(deps.core, deps.core.ctx.serverName, origin, roomId, version, checked, results);
          } catch (e) {
            if (e instanceof UnknownRoomError) return unknown();
            throw e;
          }
          for (const r of results) if (r.eventId !== undefined) answers[r.eventId] = answerFor(r);
          // A PDU too malformed to be named by the inbound path is still answered when it has an id.
          for (const raw of raws) {
            const id = eventIdOf(raw, version);
            if (id !== undefined && !(id in answers)) answers[id] = { error: 'invalid event' };
          }
        }),
      );
      if (edus.length > 0) await handleEdus({ core: deps.core, acls: deps.acls, sinks: deps.eduSinks, logger: deps.logger }, origin, edus);
      const response = { pdus: answers };
      await insertTxnResponse(deps.db, origin, txnId, response, deps.now());
      return response;
    },
  };
}
