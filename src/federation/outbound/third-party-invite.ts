/**
 * Asking the server of a third-party invite's sender to issue the member invite its proof
 * stands for (server-server API, "Third-party invites", PUT /exchange_third_party_invite):
 * after an identity server's onbind for one of our users, and when one of our users joins
 * with the proof in hand (`third_party_signed`).
 */
import { serverNameOf } from '../../core/ids.js';
import type { JsonObject } from '../../core/types.js';
import type { FederationClient } from '../client.js';

/** `signed.mxid` invited by `sender` (a valid id of a user of another server) into `roomId`, with the proof. */
export async function exchangeThirdPartyInvite(client: FederationClient, roomId: string, sender: string, signed: JsonObject): Promise<void> {
  const server = serverNameOf(sender)!;
  // The display name is the room's to give: the inviting server takes it from its m.room.third_party_invite.
  const content = { membership: 'invite', third_party_invite: { display_name: '', signed } };
  await client.request(server, {
    method: 'PUT',
    path: `/_matrix/federation/v1/exchange_third_party_invite/${encodeURIComponent(roomId)}`,
    body: { type: 'm.room.member', room_id: roomId, sender, state_key: signed.mxid, content },
  });
}
