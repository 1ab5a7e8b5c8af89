import type { DbOrTx } from '../db/schema.js';
import { chunks } from './chunk.js';
import type { CrossSigningKeyRow, CrossSigningUsage, E2eSignatureRow } from './tables.js';

export async function getCrossSigningKeys(db: DbOrTx, userIds: string[]): Promise<CrossSigningKeyRow[]> {
  const out: CrossSigningKeyRow[] = [];
  for (const part of chunks(userIds)) {
    out.push(...(await db.selectFrom('cross_signing_keys').selectAll().where('user_id', 'in', part).execute()));
  }
  return out;
}

export async function putCrossSigningKey(db: DbOrTx, row: CrossSigningKeyRow): Promise<void> {
  await db
    .insertInto('cross_signing_keys')
    .values(row)
    .onConflict((oc) => oc.columns(['user_id', 'usage']).doUpdateSet({ public_key: row.public_key, json: row.json }))
    .execute();
}

export async function deleteSignaturesOn(db: DbOrTx, targetUserId: string, targetKeyIds: string[]): Promise<void> {
  for (const part of chunks(targetKeyIds)) {
    await db
      .deleteFrom('e2e_signatures')
      .where('target_user_id', '=', targetUserId)
      .where('target_key_id', 'in', part)
      .execute();
  }
}

/** Signatures on keys of `targetUserIds` that a viewer may see: made by the key's owner or by the viewer. */
export async function getVisibleSignatures(db: DbOrTx, targetUserIds: string[], viewer: string): Promise<E2eSignatureRow[]> {
  const out: E2eSignatureRow[] = [];
  for (const part of chunks(targetUserIds)) {
    const rows = await db
      .selectFrom('e2e_signatures')
      .selectAll()
      .where('target_user_id', 'in', part)
      .where((eb) => eb.or([eb('signer_user_id', '=', eb.ref('target_user_id')), eb('signer_user_id', '=', viewer)]))
      .execute();
    out.push(...rows);
  }
  return out;
}

export async function putSignatures(db: DbOrTx, rows: E2eSignatureRow[]): Promise<void> {
  for (const part of chunks(rows, 200)) {
    await db
      .insertInto('e2e_signatures')
      .values(part)
      .onConflict((oc) =>
        oc
          .columns(['target_user_id', 'target_key_id', 'signer_user_id', 'signer_key_id'])
          .doUpdateSet((eb) => ({ signature: eb.ref('excluded.signature') })),
      )
      .execute();
  }
}

export type { CrossSigningUsage };

export async function deleteCrossSigningKeysOf(db: DbOrTx, userId: string): Promise<void> {
  await db.deleteFrom('cross_signing_keys').where('user_id', '=', userId).execute();
}
