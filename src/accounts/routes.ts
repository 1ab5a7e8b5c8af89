import type { Context } from '../context.js';
import { userDirectoryRoutes } from '../directory/user-directory.js';
import type { Route } from '../http/router.js';
import { accountRoutes } from './account-routes.js';
import { deviceRoutes } from './device-routes.js';
import { loginRoutes } from './login-routes.js';
import { moderationRoutes } from './moderation.js';
import { openIdRoutes } from './openid-routes.js';
import { whoisRoutes } from './whois.js';
import { profileRoutes } from './profile-routes.js';
import { registrationRoutes } from './registration-routes.js';
import { sharedSecretRoutes } from './shared-secret-routes.js';
import { threepidRoutes } from './threepid-routes.js';

export function accountsRoutes(ctx: Context): Route[] {
  return [
    ...registrationRoutes(ctx),
    ...sharedSecretRoutes(ctx),
    ...loginRoutes(ctx),
    ...accountRoutes(ctx),
    ...threepidRoutes(ctx),
    ...deviceRoutes(ctx),
    ...profileRoutes(ctx),
    ...openIdRoutes(ctx),
    ...whoisRoutes(ctx),
    ...moderationRoutes(ctx),
    ...userDirectoryRoutes(ctx),
  ];
}
