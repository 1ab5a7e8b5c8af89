import type { Context } from '../context.js';
import type { Route } from '../http/router.js';

export function accountsRoutes(ctx: Context): Route[] {
  void ctx;
  return [];
}
