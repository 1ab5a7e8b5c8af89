import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { turnCredentials } from './turn.js';

/** The MatrixRTC transports endpoint's unstable prefix (MSC4143). */
export const RTC_FEATURE = 'org.matrix.msc4143';

/**
 * Calls: TURN credentials for 1:1 calls (spec: "Voice over IP",
 * GET /voip/turnServer) and the MatrixRTC transports Element Call connects
 * through (MSC4143, e.g. a LiveKit service), both from the config.
 */
export function voipRoutes(ctx: Context): Route[] {
  return [
    {
      method: 'GET',
      path: '/voip/turnServer',
      handler: (req) => {
        const { uris, shared_secret: secret, ttl } = ctx.config.turn;
        // Without TURN configured the answer is an empty object: clients then call without a relay.
        if (uris.length === 0 || secret === '') return {};
        return turnCredentials(secret, uris, ttl, req.requester.userId, ctx.now());
      },
    },
    {
      method: 'GET',
      prefix: `/_matrix/client/unstable/${RTC_FEATURE}`,
      versions: [],
      path: '/rtc/transports',
      handler: () => ({ rtc_transports: ctx.config.matrix_rtc.transports }),
    },
  ];
}
