/**
 * oEmbed basics for URL previews (https://oembed.com/): a page names its oEmbed JSON with
 * `<link rel="alternate" type="application/json+oembed" href="...">` (oEmbed §4, discovery; see
 * opengraph.ts), and the JSON's fields are read as OpenGraph keys: `title`, `provider_name` as
 * `og:site_name`, the text of a rich or video embed's `html` as `og:description`, a photo's
 * `url` (or any embed's `thumbnail_url`) as `og:image`, and a video as `og:type` `video.other`.
 * Fields of the wrong type are ignored.
 */
import { Parser } from 'htmlparser2';

/** The discovery link's type: JSON only (the XML form is not read). */
export const OEMBED_JSON_TYPE = 'application/json+oembed';

const MAX_VALUE_CHARS = 2000;

export function openGraphFromOEmbed(json: unknown): Record<string, string> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return {};
  const o = json as Record<string, unknown>;
  const text = (key: string): string | undefined => {
    const v = o[key];
    return typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, MAX_VALUE_CHARS) : undefined;
  };
  const dimension = (key: string): string | undefined => {
    const v = Number(o[key]);
    return Number.isInteger(v) && v > 0 ? String(v) : undefined;
  };
  const og: Record<string, string | undefined> = { 'og:title': text('title'), 'og:site_name': text('provider_name') };
  const type = text('type');
  if (type === 'video') og['og:type'] = 'video.other';
  if (type === 'rich' || type === 'video') {
    const html = text('html');
    if (html) og['og:description'] = textOf(html);
  }
  if (type === 'photo' && text('url')) {
    og['og:image'] = text('url');
    og['og:image:width'] = dimension('width');
    og['og:image:height'] = dimension('height');
  } else if (text('thumbnail_url')) {
    og['og:image'] = text('thumbnail_url');
    og['og:image:width'] = dimension('thumbnail_width');
    og['og:image:height'] = dimension('thumbnail_height');
  }
  return Object.fromEntries(Object.entries(og).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''));
}

/** The visible text of an embed's HTML, whitespace collapsed (scripts and styles left out). */
function textOf(html: string): string {
  let out = '';
  let hidden = 0;
  const parser = new Parser(
    {
      onopentag(name) {
        if (name === 'script' || name === 'style') hidden++;
      },
      onclosetag(name) {
        if (name === 'script' || name === 'style') hidden = Math.max(0, hidden - 1);
      },
      ontext(t) {
        if (hidden === 0 && out.length < MAX_VALUE_CHARS) out += t;
      },
    },
    { decodeEntities: true, lowerCaseTags: true },
  );
  parser.write(html);
  parser.end();
  return out.replace(/\s+/g, ' ').trim().slice(0, MAX_VALUE_CHARS);
}
