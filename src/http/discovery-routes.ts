import { clientBaseUrl } from '../config/base-url.js';
import type { Context } from '../context.js';
import { DEFAULT_ROOM_VERSION, ROOM_VERSIONS } from '../core/room-versions.js';
import { DELAYED_EVENTS_FEATURE } from '../delayed-events/service.js';
import { SLIDING_SYNC_FEATURE } from '../sliding-sync/routes.js';
import { RTC_FEATURE } from '../voip/routes.js';
import type { Route } from './router.js';

/** Spec versions whose required endpoints Hearth serves. */
export const SUPPORTED_SPEC_VERSIONS = [
  'r0.0.1', 'r0.1.0', 'r0.2.0', 'r0.3.0', 'r0.4.0', 'r0.5.0', 'r0.6.0', 'r0.6.1',
  'v1.1', 'v1.2', 'v1.3', 'v1.4', 'v1.5', 'v1.6', 'v1.7', 'v1.8', 'v1.9', 'v1.10', 'v1.11', 'v1.12',
];

export function discoveryRoutes(ctx: Context): Route[] {
  return [
    {
      method: 'GET',
      path: '/versions',
      versions: [],
      auth: 'none',
      handler: () => ({
        versions: SUPPORTED_SPEC_VERSIONS,
        unstable_features: {
          [SLIDING_SYNC_FEATURE]: true,
          [DELAYED_EVENTS_FEATURE]: ctx.config.delayed_events.enabled,
          [RTC_FEATURE]: ctx.config.matrix_rtc.transports.length > 0,
          // Thread subscriptions and their sliding-sync extension (the flags clients look for).
          'org.matrix.msc4306': true,
          'org.matrix.msc4308': true,
        },
      }),
    },
    {
      method: 'GET',
      path: '/client',
      prefix: '/.well-known/matrix',
      versions: [],
      auth: 'none',
      handler: (req) => {
        const body: Record<string, unknown> = { 'm.homeserver': { base_url: clientBaseUrl(ctx.config, req.socket?.localPort) } };
        // Element Call finds its MatrixRTC transports here too (MSC4143 `rtc_foci`).
        const transports = ctx.config.matrix_rtc.transports;
        if (transports.length > 0) body[`${RTC_FEATURE}.rtc_foci`] = transports;
        return body;
      },
    },
    {
      method: 'GET',
      path: '/capabilities',
      handler: () => ({
        capabilities: {
          'm.room_versions': {
            default: DEFAULT_ROOM_VERSION,
            available: Object.fromEntries(
              Object.values(ROOM_VERSIONS).map((v) => [v.id, v.stable ? 'stable' : 'unstable']),
            ),
          },
          'm.change_password': { enabled: true },
          'm.set_displayname': { enabled: true },
          'm.set_avatar_url': { enabled: true },
          'm.3pid_changes': { enabled: false },
          'm.get_login_token': { enabled: false },
          ...(ctx.config.delayed_events.enabled
            ? { [`${DELAYED_EVENTS_FEATURE}.delayed_events`]: { enabled: true, max_delay: ctx.config.delayed_events.max_delay_ms } }
            : {}),
        },
      }),
    },
  ];
}
