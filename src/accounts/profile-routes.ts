import type { Context } from '../context.js';
import { guestAccessForbidden } from '../http/errors.js';
import type { AuthedRequest, Route } from '../http/router.js';

/** Profile field names (spec v1.16): the two classic ones, `m.tz`, or a namespaced custom key. */
const KEY_NAME = '^(avatar_url|displayname|m\\.tz|[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+)$';
const keyParams = {
  type: 'object',
  properties: { userId: { type: 'string' }, keyName: { type: 'string', pattern: KEY_NAME } },
};

/** Guests may change their display name only (spec: modules/guest_access). */
function checkGuestField(req: AuthedRequest, keyName: string): void {
  if (req.requester.isGuest === true && keyName !== 'displayname') throw guestAccessForbidden('Guests may only change their display name');
}

export function profileRoutes(ctx: Context): Route[] {
  const profiles = () => ctx.services.accounts.profiles;
  return [
    {
      method: 'GET',
      path: '/profile/:userId',
      auth: 'optional',
      guestAllowed: true,
      handler: (req) => profiles().getAll(req.params.userId),
    },
    {
      method: 'GET',
      path: '/profile/:userId/:keyName',
      auth: 'optional',
      guestAllowed: true,
      schema: { params: keyParams },
      handler: (req) => profiles().getField(req.params.userId, req.params.keyName),
    },
    {
      method: 'PUT',
      path: '/profile/:userId/:keyName',
      refusedWhenSuspended: true,
      guestAllowed: true,
      schema: { params: keyParams },
      handler: (req) => {
        checkGuestField(req, req.params.keyName);
        return profiles().setField(req.requester, req.params.userId, req.params.keyName, req.body);
      },
    },
    {
      method: 'DELETE',
      path: '/profile/:userId/:keyName',
      refusedWhenSuspended: true,
      guestAllowed: true,
      schema: { params: keyParams },
      handler: (req) => {
        checkGuestField(req, req.params.keyName);
        return profiles().deleteField(req.requester, req.params.userId, req.params.keyName);
      },
    },
  ];
}
