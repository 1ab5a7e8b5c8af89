import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { adminRoutes } from './admin-routes.js';
import { downloadRoutes } from './download-routes.js';
import { infoRoutes } from './info-routes.js';
import { uploadRoutes } from './upload-routes.js';

/** Every media endpoint: uploads, downloads and thumbnails, config and previews, admin deletion. */
export function mediaRoutes(ctx: Context): Route[] {
  const media = ctx.services.media;
  // Where a client sends a user who hit the storage quota (M_USER_LIMIT_EXCEEDED's info_uri).
  const infoUri = ctx.config.public_baseurl;
  return [
    ...uploadRoutes(media, infoUri),
    ...downloadRoutes(media, infoUri, ctx.config.media.legacy_freeze_ts),
    ...infoRoutes(media, infoUri),
    ...adminRoutes(media, infoUri),
  ];
}
