import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** A name for this process, unique across the cluster and across restarts (a restarted node is a new holder). */
export function newNodeId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
}
