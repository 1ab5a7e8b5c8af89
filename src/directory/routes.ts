import type { Context } from '../context.js';
import type { Route } from '../http/router.js';

export function directoryRoutes(ctx: Context): Route[] {
  void ctx;
  return [];
}
