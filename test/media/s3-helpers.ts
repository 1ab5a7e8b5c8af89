/** An S3-compatible server (s3rver) on loopback with one bucket, for the S3 MediaStore tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import type { S3Settings } from '../../src/media/s3-store.js';

export interface TestS3 {
  settings: S3Settings;
  /** The s3rver's folder: one subfolder per bucket. */
  directory: string;
  close(): Promise<void>;
}

export async function startS3(bucket = 'hearth-media'): Promise<TestS3> {
  const directory = mkdtempSync(join(tmpdir(), 'hearth-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
  const addr = await server.run();
  return {
    settings: {
      endpoint: `http://127.0.0.1:${addr.port}`,
      bucket,
      region: 'us-east-1',
      // s3rver's fixed development credentials.
      access_key_id: 'S3RVER',
      secret_access_key: 'S3RVER',
      force_path_style: true,
    },
    directory,
    close: async () => {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
