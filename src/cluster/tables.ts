/** The cluster domain's tables (see migrations.ts). */
declare module '../db/schema.js' {
  interface Tables {
    cache_invalidations: CacheInvalidationRow;
    cluster_nodes: NodeRow;
    cluster_leases: LeaseRow;
    typing_notices: TypingNoticeRow;
    rate_limit_buckets: RateLimitBucketRow;
  }
}

export interface CacheInvalidationRow {
  pos: number;
  cache: string;
  key: string;
  created_ts: number;
}

export interface NodeRow {
  node_id: string;
  address: string | null;
  started_ts: number;
  heartbeat_ts: number;
}

export interface LeaseRow {
  name: string;
  holder: string;
  epoch: number;
  expires_ts: number;
}

export interface TypingNoticeRow {
  room_id: string;
  user_id: string;
  expires_ts: number;
  pos: number;
}

export interface RateLimitBucketRow {
  action: string;
  key: string;
  tokens: number;
  updated_ms: number;
  allowed: boolean;
}
