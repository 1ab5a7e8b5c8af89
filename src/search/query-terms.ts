/**
 * The words of a search term: runs of letters, digits and underscores,
 * lower-cased, in order, without repeats. Both backends match events holding
 * every word (stemmed by their tokenizers), and the words are what
 * `highlights` lists.
 */
export function searchWords(term: string): string[] {
  const words = term.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? [];
  return [...new Set(words)].slice(0, 32);
}

/** Whether `value` matches a filter pattern, where `*` stands for any run of characters. */
export function globMatches(pattern: string, value: string): boolean {
  if (!pattern.includes('*')) return pattern === value;
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
  return re.test(value);
}
