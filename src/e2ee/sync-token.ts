/**
 * The parts of a /sync `next_batch` token that key tracking needs. Tokens
 * look like `s<events>_<to_device>_<account_data>_<receipts>_<device_lists>_...`
 * (one position per stream, written by sync); missing trailing parts count as 0.
 */
export interface KeyTrackingPositions {
  events: number;
  deviceLists: number;
}

export function parseSyncTokenPositions(token: string): KeyTrackingPositions | null {
  const m = /^s(\d+(?:_\d+)*)$/.exec(token);
  if (!m) return null;
  const parts = m[1].split('_').map(Number);
  if (parts.some((n) => !Number.isSafeInteger(n))) return null;
  return { events: parts[0], deviceLists: parts[4] ?? 0 };
}
