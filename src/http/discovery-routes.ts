import { clientBaseUrl } from '../config/base-url.js';
import type { Context } from '../context.js';
import { DEFAULT_ROOM_VERSION, ROOM_VERSIONS } from '../core/room-versions.js';
import { DELAYED_EVENTS_FEATURE } from '../delayed-events/service.js';
import { DEHYDRATION_FEATURE } from '../e2ee/dehydrated-device.js';
import { SLIDING_SYNC_FEATURE } from '../sliding-sync/routes.js';
import { RTC_FEATURE } from '../voip/routes.js';
import { notFound } from './errors.js';
import type { Route } from './router.js';

/** Spec versions whose required endpoints Hearth serves. */
export const SUPPORTED_SPEC_VERSIONS = [
  'r0.0.1', 'r0.1.0', 'r0.2.0', 'r0.3.0', 'r0.4.0', 'r0.5.0', 'r0.6.0', 'r0.6.1',
  'v1.1', 'v1.2', 'v1.3', 'v1.4', 'v1.5', 'v1.6', 'v1.7', 'v1.8', 'v1.9', 'v1.10', 'v1.11', 'v1.12',
  'v1.13', 'v1.14', 'v1.15', 'v1.16', 'v1.17', 'v1.18', 'v1.19',
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
          [DEHYDRATION_FEATURE]: true,
          // Thread subscriptions and their sliding-sync extension (the flags clients look for).
          'org.matrix.msc4306': true,
          'org.matrix.msc4308': true,
          // The sliding-sync threads extension and /thread_updates.
          'org.matrix.msc4360': true,
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
      path: '/support',
      prefix: '/.well-known/matrix',
      versions: [],
      auth: 'none',
      handler: () => {
        // The spec requires at least one of the two; with neither configured there is nothing to serve.
        const { contacts, support_page } = ctx.config.support;
        if (contacts.length === 0 && !support_page) throw notFound('No support information is configured');
        return { ...(contacts.length > 0 ? { contacts } : {}), ...(support_page ? { support_page } : {}) };
      },
    },
    {
      // Hearth is not a policy server (client-server-api "Policy Servers"): the spec's answer is 404.
      method: 'GET',
      path: '/policy_server',
      prefix: '/.well-known/matrix',
      versions: [],
      auth: 'none',
      handler: () => {
        throw notFound('This server is not a policy server');
      },
    },
    {
      method: 'GET',
      path: '/capabilities',
      handler: (req) => ({
        capabilities: {
          'm.room_versions': {
            default: DEFAULT_ROOM_VERSION,
            available: Object.fromEntries(
              Object.values(ROOM_VERSIONS).map((v) => [v.id, v.stable ? 'stable' : 'unstable']),
            ),
          },
          'm.change_password': { enabled: true },
          // Every profile field is the user's to change (v1.16); the two below are its deprecated forms.
          'm.profile_fields': { enabled: true },
          'm.set_displayname': { enabled: true },
          'm.set_avatar_url': { enabled: true },
          // Addresses can be added and removed only where this server can validate them.
          'm.3pid_changes': { enabled: ctx.config.email !== null },
          'm.get_login_token': { enabled: ctx.config.login_token.enabled },
          // Omitted for everyone else, as the spec asks when both would be false.
          ...(req.requester.isAdmin ? { 'm.account_moderation': { suspend: true, lock: true } } : {}),
          ...(ctx.config.delayed_events.enabled
            ? { [`${DELAYED_EVENTS_FEATURE}.delayed_events`]: { enabled: true, max_delay: ctx.config.delayed_events.max_delay_ms } }
            : {}),
        },
      }),
    },
  ];
}
