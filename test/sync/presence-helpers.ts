import assert from 'node:assert/strict';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, syncPath } from './util.js';

/** Presence timeouts short enough for a test (spec: Presence, "Idle timeout"). */
export const IDLE_MS = 1500;
export const OFFLINE_MS = 4000;
export const TIMEOUT_CONFIG = { presence_idle_timeout_ms: IDLE_MS, presence_offline_timeout_ms: OFFLINE_MS };

export const statusPath = (userId: string) => `${C}/presence/${encodeURIComponent(userId)}/status`;

/** The presence events of `userId` in a sync body. */
export function presenceOf(body: any, userId: string): any[] {
  return (body.presence?.events ?? []).filter((e: any) => e.sender === userId);
}

/**
 * Follows `watcher`'s /sync (not itself affecting presence) from `since` until `userId` is
 * `offline` or `untilMs` passes; returns the presence states seen in order, each with the time
 * since `t0` it arrived, and the last token.
 */
export async function watchPresence(s: TestServer, watcher: TestUser, userId: string, since: string, t0: number, untilMs: number): Promise<{ seen: { presence: string; at: number }[]; token: string }> {
  const seen: { presence: string; at: number }[] = [];
  let token = since;
  while (Date.now() - t0 < untilMs) {
    const res = await s.request('GET', syncPath({ since: token, timeout: 1000, set_presence: 'offline' }), { token: watcher.accessToken });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    token = res.body.next_batch;
    for (const ev of presenceOf(res.body, userId)) seen.push({ presence: ev.content.presence, at: Date.now() - t0 });
    if (seen.at(-1)?.presence === 'offline') break;
  }
  return { seen, token };
}

