import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { createRoomRoutes } from './routes/create-room-routes.js';
import { eventRoutes } from './routes/event-routes.js';
import { membershipRoutes } from './routes/membership-routes.js';
import { upgradeRoutes } from './routes/upgrade-routes.js';

export function roomsRoutes(ctx: Context): Route[] {
  return [...createRoomRoutes(ctx), ...membershipRoutes(ctx), ...eventRoutes(ctx), ...upgradeRoutes(ctx)];
}
