/**
 * Words for the user directory's prefix search: runs of letters and digits,
 * lower-cased, accents folded (so "marq" finds "Márquez"). Punctuation in
 * user ids (`.`, `_`, `-`, `=`, `/`, `+`, `:`, `@`) separates words, so
 * `@alice.smith:example.org` is found by "smi".
 */
export function searchWords(text: string): string[] {
  return text.normalize('NFKD').replace(/\p{M}+/gu, '').toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** The stored form: every word preceded by a space, so `LIKE '% word%'` is a word-prefix match. */
export function searchText(userId: string, displayname: string | null | undefined): string {
  const words = new Set([...searchWords(userId), ...searchWords(displayname ?? '')]);
  return ` ${[...words].join(' ')}`;
}
