import type { Context } from '../context.js';
import type { Route } from '../http/router.js';

/** Synapse's admin registration endpoint, kept at its Synapse path for the tooling that uses it. */
export function sharedSecretRoutes(ctx: Context): Route[] {
  const ssr = () => ctx.services.accounts.sharedSecret;
  return [
    {
      method: 'GET',
      path: '/register',
      prefix: '/_synapse/admin',
      versions: ['v1'],
      auth: 'none',
      // Each nonce is a row (for 60 s): unauthenticated callers must not mint them without limit.
      rateLimit: 'registration',
      handler: () => ssr().nonce(),
    },
    {
      method: 'POST',
      path: '/register',
      prefix: '/_synapse/admin',
      versions: ['v1'],
      auth: 'none',
      rateLimit: 'registration',
      handler: (req) => ssr().register(req.body, req.ip),
    },
  ];
}
