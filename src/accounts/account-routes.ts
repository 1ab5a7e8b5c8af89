import type { Context } from '../context.js';
import { MatrixError } from '../http/errors.js';
import type { Route } from '../http/router.js';
import { requestInfo } from './request-info.js';

const authDict = { type: 'object' };
const threepidBody = {
  type: 'object',
  required: ['medium', 'address'],
  properties: { medium: { type: 'string', enum: ['email', 'msisdn'] }, address: { type: 'string' }, id_server: { type: 'string' } },
};
const threepidDenied = () => {
  throw new MatrixError(403, 'M_THREEPID_DENIED', 'Third-party identifiers are not supported on this homeserver');
};

export function accountRoutes(ctx: Context): Route[] {
  const account = () => ctx.services.accounts.account;
  return [
    {
      method: 'POST',
      path: '/account/password',
      schema: {
        body: {
          type: 'object',
          required: ['new_password'],
          properties: { new_password: { type: 'string' }, logout_devices: { type: 'boolean' }, auth: authDict },
        },
      },
      handler: (req) => account().changePassword(req.requester, req.body, requestInfo(req)),
    },
    {
      method: 'POST',
      path: '/account/deactivate',
      schema: {
        body: { type: 'object', properties: { auth: authDict, id_server: { type: 'string' }, erase: { type: 'boolean' } } },
      },
      handler: (req) => account().deactivate(req.requester, req.body, requestInfo(req)),
    },
    // Third-party identifiers: none are ever bound on this server.
    { method: 'GET', path: '/account/3pid', handler: () => ({ threepids: [] }) },
    {
      method: 'POST',
      path: '/account/3pid/delete',
      schema: { body: threepidBody },
      handler: () => ({ id_server_unbind_result: 'success' }),
    },
    {
      method: 'POST',
      path: '/account/3pid/unbind',
      schema: { body: threepidBody },
      handler: () => ({ id_server_unbind_result: 'success' }),
    },
    { method: 'POST', path: '/account/3pid', handler: threepidDenied },
    { method: 'POST', path: '/account/3pid/add', handler: threepidDenied },
    { method: 'POST', path: '/account/3pid/bind', handler: threepidDenied },
    // This server sends no email or SMS and trusts no identity server, so no address can be validated.
    // Adding one to an account is the case the spec names M_THREEPID_MEDIUM_NOT_SUPPORTED for
    // (administrative_contact.yaml); registration and password reset have only M_THREEPID_DENIED (403).
    ...['email', 'msisdn'].map((medium): Route => ({
      method: 'POST',
      path: `/account/3pid/${medium}/requestToken`,
      auth: 'none',
      handler: () => {
        throw new MatrixError(400, 'M_THREEPID_MEDIUM_NOT_SUPPORTED', `This homeserver cannot validate ${medium === 'email' ? 'email addresses' : 'phone numbers'}`);
      },
    })),
    ...['/register', '/account/password'].flatMap((base): Route[] =>
      ['email', 'msisdn'].map((medium) => ({
        method: 'POST' as const,
        path: `${base}/${medium}/requestToken`,
        auth: 'none' as const,
        handler: threepidDenied,
      })),
    ),
  ];
}
