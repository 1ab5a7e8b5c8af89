declare module '../db/schema.js' {
  interface Tables {
    device_keys: DeviceKeysRow;
    one_time_keys: OneTimeKeyRow;
    fallback_keys: FallbackKeyRow;
    to_device: ToDeviceRow;
    to_device_txns: ToDeviceTxnRow;
    device_list_changes: DeviceListChangeRow;
    cross_signing_keys: CrossSigningKeyRow;
    e2e_signatures: E2eSignatureRow;
    remote_device_lists: RemoteDeviceListRow;
  }
}

/** A device's identity keys, exactly as the device uploaded and signed them. */
export interface DeviceKeysRow {
  user_id: string;
  device_id: string;
  json: string;
  /** device_lists position of the last change. */
  pos: number;
}

export interface OneTimeKeyRow {
  user_id: string;
  device_id: string;
  algorithm: string;
  key_id: string;
  json: string;
  /** Upload order: keys are claimed oldest upload first (spec v1.13, MSC4225). */
  seq: number;
}

/** At most one per (device, algorithm); reused until replaced. */
export interface FallbackKeyRow {
  user_id: string;
  device_id: string;
  algorithm: string;
  key_id: string;
  json: string;
  used: number;
}

export interface ToDeviceRow {
  pos: number;
  user_id: string;
  device_id: string;
  sender: string;
  type: string;
  content: string;
  message_id: string;
}

/** Transaction ids already handled by /sendToDevice, per sending device. */
export interface ToDeviceTxnRow {
  sender: string;
  sender_device: string;
  txn_id: string;
  ts: number;
}

export interface DeviceListChangeRow {
  pos: number;
  user_id: string;
  /** The device whose keys changed (or which was added or deleted); null for the user's cross-signing keys. */
  device_id: string | null;
}

/**
 * A remote user's device list held here (their devices in `device_keys`, their master and
 * self-signing keys in `cross_signing_keys`): the last `stream_id` of theirs applied, and whether
 * the copy may be out of date (no room shared for a while, or a resync failed).
 */
export interface RemoteDeviceListRow {
  user_id: string;
  stream_id: number;
  stale: number;
}

export type CrossSigningUsage = 'master' | 'self_signing' | 'user_signing';

export interface CrossSigningKeyRow {
  user_id: string;
  usage: CrossSigningUsage;
  /** The unpadded base64 public key. */
  public_key: string;
  json: string;
}

/**
 * Signatures uploaded separately through /keys/signatures/upload, merged
 * into the target key when it is queried. `target_key_id` is a device id or
 * a master key's public key.
 */
export interface E2eSignatureRow {
  signer_user_id: string;
  signer_key_id: string;
  target_user_id: string;
  target_key_id: string;
  signature: string;
}
