/**
 * Third-party invites across servers (third_party_invite.yaml):
 *
 * - `PUT /3pid/onbind`: an identity server tells this server that one of its users bound an
 *   address that had invites waiting. For each invite, the inviting user's server makes the
 *   member invite: this server when the inviter is ours, else the inviter's server, asked
 *   through `exchange_third_party_invite`. Unauthenticated, as the spec has it: the `signed`
 *   proof in each invite is what the auth rules check.
 * - `PUT /exchange_third_party_invite/{roomId}`: another server hands over such a proof for an
 *   invite one of our users sent; the invite is issued as any other.
 *
 * A failed invite is logged and the others are still handled: the identity server only learns
 * that the notification arrived.
 */
import type { Logger } from 'pino';
import { isValidRoomId, isValidUserId, serverNameOf } from '../../core/ids.js';
import type { JsonObject } from '../../core/types.js';
import { MatrixError } from '../../http/errors.js';
import type { FederationClient } from '../client.js';
import { exchangeThirdPartyInvite } from '../outbound/third-party-invite.js';
import type { FederationRoute } from '../router.js';

export interface ThirdPartyInviteDeps {
  serverName: string;
  client: FederationClient;
  logger: Logger;
  /** Sends `sender`'s invite of `signed.mxid` with the proof (rooms service). */
  accept(roomId: string, sender: string, signed: JsonObject): Promise<unknown>;
}

const invalid = (msg: string) => new MatrixError(400, 'M_INVALID_PARAM', msg);

const signedSchema = {
  type: 'object',
  required: ['mxid', 'token', 'signatures'],
  properties: { mxid: { type: 'string' }, token: { type: 'string' }, signatures: { type: 'object' } },
};

export function thirdPartyInviteRoutes(deps: ThirdPartyInviteDeps): FederationRoute[] {
  return [
    {
      method: 'PUT',
      url: '/_matrix/federation/v1/3pid/onbind',
      auth: 'none',
      schema: {
        body: {
          type: 'object',
          required: ['medium', 'address', 'mxid', 'invites'],
          properties: {
            medium: { type: 'string' },
            address: { type: 'string' },
            mxid: { type: 'string' },
            invites: {
              type: 'array',
              maxItems: 100,
              items: {
                type: 'object',
                required: ['mxid', 'room_id', 'sender', 'signed'],
                properties: { mxid: { type: 'string' }, room_id: { type: 'string' }, sender: { type: 'string' }, signed: signedSchema },
              },
            },
          },
        },
      },
      handler: async (req) => {
        const mxid = req.body.mxid as string;
        if (!isValidUserId(mxid) || serverNameOf(mxid) !== deps.serverName) throw invalid(`${mxid} is not a user of this server`);
        for (const invite of req.body.invites as { mxid: string; room_id: string; sender: string; signed: JsonObject }[]) {
          try {
            await onBoundInvite(deps, mxid, invite);
          } catch (e) {
            deps.logger.info({ roomId: invite.room_id, err: (e as Error).message }, 'a third-party invite could not be exchanged');
          }
        }
        return {};
      },
    },
    {
      method: 'PUT',
      url: '/_matrix/federation/v1/exchange_third_party_invite/:roomId',
      schema: {
        body: {
          type: 'object',
          required: ['type', 'room_id', 'sender', 'state_key', 'content'],
          properties: {
            type: { type: 'string', enum: ['m.room.member'] },
            room_id: { type: 'string' },
            sender: { type: 'string' },
            state_key: { type: 'string' },
            content: {
              type: 'object',
              required: ['membership', 'third_party_invite'],
              properties: {
                membership: { type: 'string', enum: ['invite'] },
                third_party_invite: { type: 'object', required: ['signed'], properties: { display_name: { type: 'string' }, signed: signedSchema } },
              },
            },
          },
        },
      },
      handler: async (req) => {
        const roomId = req.params.roomId as string;
        const body = req.body as { room_id: string; sender: string; state_key: string; content: { third_party_invite: { signed: JsonObject } } };
        if (body.room_id !== roomId) throw invalid('room_id does not match the path');
        if (!isValidUserId(body.sender) || serverNameOf(body.sender) !== deps.serverName) throw invalid('The sender is not a user of this server');
        const signed = body.content.third_party_invite.signed;
        if (signed.mxid !== body.state_key) throw invalid('state_key does not match signed.mxid');
        await deps.accept(roomId, body.sender, signed);
        return {};
      },
    },
  ];
}

async function onBoundInvite(deps: ThirdPartyInviteDeps, mxid: string, invite: { mxid: string; room_id: string; sender: string; signed: JsonObject }): Promise<void> {
  if (invite.mxid !== mxid || invite.signed.mxid !== mxid) throw invalid('The invite is for someone else');
  if (!isValidRoomId(invite.room_id) || !isValidUserId(invite.sender)) throw invalid('Malformed room id or sender');
  const inviterServer = serverNameOf(invite.sender)!;
  if (inviterServer === deps.serverName) {
    await deps.accept(invite.room_id, invite.sender, invite.signed);
    return;
  }
  await exchangeThirdPartyInvite(deps.client, invite.room_id, invite.sender, invite.signed);
}
