import type { Context } from '../context.js';
import { MatrixError } from '../http/errors.js';
import type { Route } from '../http/router.js';
import { SUBMIT_TOKEN_PATH } from './email-validation.js';
import { requestInfo } from './request-info.js';
import type { ValidationPurpose } from '../threepid/emails.js';

const authDict = { type: 'object' };
const threepidBody = {
  type: 'object',
  required: ['medium', 'address'],
  properties: { medium: { type: 'string', enum: ['email', 'msisdn'] }, address: { type: 'string' }, id_server: { type: 'string' } },
};
const emailRequestBody = {
  type: 'object',
  required: ['client_secret', 'email', 'send_attempt'],
  properties: {
    client_secret: { type: 'string' },
    email: { type: 'string' },
    send_attempt: { type: 'integer' },
    next_link: { type: 'string' },
    id_server: { type: 'string' },
    id_access_token: { type: 'string' },
  },
};
const submitBody = {
  type: 'object',
  required: ['sid', 'client_secret', 'token'],
  properties: { sid: { type: 'string' }, client_secret: { type: 'string' }, token: { type: 'string' } },
};

/** No SMS is ever sent: phone numbers cannot be validated here (the codes the spec gives each endpoint). */
function msisdnRefused(purpose: ValidationPurpose): never {
  if (purpose === 'add') throw new MatrixError(400, 'M_THREEPID_MEDIUM_NOT_SUPPORTED', 'This homeserver cannot validate phone numbers');
  throw new MatrixError(403, 'M_THREEPID_DENIED', 'This homeserver cannot validate phone numbers');
}

function page(title: string, text: string): string {
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1><p>${esc(text)}</p></body></html>`;
}

/**
 * Third-party identifiers of the account (administrative_contact.yaml), the requestToken
 * endpoints of registration, password reset and adding an address, and the token submission
 * (the `submit_url` clients post to, and the link in the email).
 */
export function threepidRoutes(ctx: Context): Route[] {
  const threepids = () => ctx.services.accounts.threepids;
  const email = () => ctx.services.accounts.emailValidation;
  const requestTokenRoutes: [string, ValidationPurpose][] = [
    ['/register', 'register'],
    ['/account/password', 'password'],
    ['/account/3pid', 'add'],
  ];
  return [
    { method: 'GET', path: '/account/3pid', handler: (req) => threepids().list(req.requester.userId) },
    {
      method: 'POST',
      path: '/account/3pid/add',
      schema: { body: { type: 'object', required: ['sid', 'client_secret'], properties: { sid: { type: 'string' }, client_secret: { type: 'string' }, auth: authDict } } },
      handler: (req) => threepids().add(req.requester, req.body, requestInfo(req)),
    },
    {
      method: 'POST',
      path: '/account/3pid/bind',
      schema: {
        body: {
          type: 'object',
          required: ['sid', 'client_secret', 'id_server', 'id_access_token'],
          properties: { sid: { type: 'string' }, client_secret: { type: 'string' }, id_server: { type: 'string' }, id_access_token: { type: 'string' } },
        },
      },
      handler: (req) => threepids().bind(req.requester, req.body),
    },
    {
      // Deprecated (r0.5): what /3pid/bind does, with the credentials in `three_pid_creds`.
      method: 'POST',
      path: '/account/3pid',
      schema: {
        body: {
          type: 'object',
          required: ['three_pid_creds'],
          properties: {
            three_pid_creds: {
              type: 'object',
              required: ['sid', 'client_secret', 'id_server', 'id_access_token'],
              properties: { sid: { type: 'string' }, client_secret: { type: 'string' }, id_server: { type: 'string' }, id_access_token: { type: 'string' } },
            },
          },
        },
      },
      handler: (req) => threepids().bind(req.requester, req.body.three_pid_creds),
    },
    { method: 'POST', path: '/account/3pid/delete', schema: { body: threepidBody }, handler: (req) => threepids().delete(req.requester, req.body) },
    { method: 'POST', path: '/account/3pid/unbind', schema: { body: threepidBody }, handler: (req) => threepids().unbind(req.requester, req.body) },
    ...requestTokenRoutes.flatMap(([base, purpose]): Route[] => [
      {
        method: 'POST',
        path: `${base}/email/requestToken`,
        auth: 'none',
        rateLimit: 'registration',
        schema: { body: emailRequestBody },
        handler: (req) => email().requestToken(purpose, req.body),
      },
      { method: 'POST', path: `${base}/msisdn/requestToken`, auth: 'none', handler: () => msisdnRefused(purpose) },
    ]),
    {
      method: 'POST',
      prefix: SUBMIT_TOKEN_PATH,
      path: '',
      versions: [],
      auth: 'none',
      schema: { body: submitBody },
      handler: async (req) => {
        await email().submitToken(req.body.sid, req.body.client_secret, req.body.token);
        return { success: true };
      },
    },
    {
      // The link in the email, opened in a browser: answered with a page, or sent on to next_link.
      method: 'GET',
      prefix: SUBMIT_TOKEN_PATH,
      path: '',
      versions: [],
      auth: 'none',
      handler: async (req, reply) => {
        const q = req.query as Record<string, unknown>;
        let next: string | null;
        try {
          next = (await email().submitToken(q.sid, q.client_secret, q.token)).nextLink;
        } catch (e) {
          if (!(e instanceof MatrixError)) throw e;
          return reply.code(400).type('text/html; charset=utf-8').send(page('This link does not work', e.message));
        }
        const target = next ?? (ctx.config.email?.client_base_url || null);
        if (target) return reply.redirect(target, 302);
        return reply.type('text/html; charset=utf-8').send(page('Email address confirmed', 'You can go back to your Matrix client.'));
      },
    },
  ];
}
