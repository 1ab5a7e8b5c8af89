/**
 * The canonical form of a third-party identifier's address (appendices, "3PID Types"): one
 * string per identifier, so that the same address typed two ways finds the same account.
 */
import { caseFold } from 'unicode-case-folding';
import { invalidParam } from '../http/errors.js';

const EMAIL_RE = /^[^\s@<>]+@[^\s@<>]+$/;

/**
 * An email address as it is stored and compared: the domain lower-cased, the local part
 * case-folded with Unicode full case folding ("Caseless Matching", as the spec asks:
 * `Strauß@Example.com` is `strauss@example.com`), as Synapse and Sydent do. The address is put in
 * NFC first, so a name typed with combining accents is the same address as the precomposed one.
 */
export function canonicalEmail(address: string): string {
  const trimmed = address.trim().normalize('NFC');
  const at = trimmed.lastIndexOf('@');
  const a = at < 0 ? trimmed : `${caseFold(trimmed.slice(0, at))}@${trimmed.slice(at + 1).toLowerCase()}`;
  if (a.length > 254 || !EMAIL_RE.test(a)) throw invalidParam('Invalid email address');
  return a;
}

/** An address in its canonical form: emails as above; phone numbers (and other media) as given. */
export function canonicalAddress(medium: string, address: string): string {
  return medium === 'email' ? canonicalEmail(address) : address;
}
