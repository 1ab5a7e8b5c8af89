/** Media ids: unguessable, and safe in a path (the spec's `A-Za-z0-9_-` grammar). */
import { randomInt } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** 24 base62 characters: about 143 bits of randomness. */
const LENGTH = 24;

export function newMediaId(): string {
  let id = '';
  for (let i = 0; i < LENGTH; i++) id += ALPHABET[randomInt(ALPHABET.length)];
  return id;
}

/** What the spec allows in the media-id segment of an mxc URI (content_repo.md, security considerations). */
export function isValidMediaId(id: string): boolean {
  return /^[A-Za-z0-9_-]{1,255}$/.test(id);
}

export function mxcUri(serverName: string, mediaId: string): string {
  return `mxc://${serverName}/${mediaId}`;
}

/** Splits `mxc://server/id`; undefined when it is not one. */
export function parseMxc(uri: string): { serverName: string; mediaId: string } | undefined {
  const m = /^mxc:\/\/([^/]+)\/([A-Za-z0-9_-]+)$/.exec(uri);
  return m ? { serverName: m[1], mediaId: m[2] } : undefined;
}
