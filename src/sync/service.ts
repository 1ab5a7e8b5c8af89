import type { Context } from '../context.js';

/**
 * /sync, filters, the notifier (long-poll wake-ups), typing, receipts, read
 * markers, account data, tags and presence.
 */
export class SyncService {
  constructor(private readonly ctx: Context) {}
}
