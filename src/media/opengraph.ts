/**
 * The OpenGraph tags of an HTML page (https://ogp.me/): `og:*` meta properties, with the
 * page's `<title>` and meta description as fallbacks; and the page's oEmbed discovery link
 * (oembed.ts). Only the document head matters; parsing stops at `<body>`.
 */
import { Parser } from 'htmlparser2';
import { OEMBED_JSON_TYPE } from './oembed.js';

const MAX_TAGS = 50;
const MAX_VALUE_CHARS = 2000;

export interface PageHead {
  og: Record<string, string>;
  /** The `href` of the first JSON oEmbed discovery link, as written (possibly relative). */
  oembedHref: string | undefined;
}

export function parseHead(html: string): PageHead {
  const og: Record<string, string> = {};
  let oembedHref: string | undefined;
  let title = '';
  let inTitle = false;
  let description: string | undefined;
  let count = 0;
  const parser = new Parser(
    {
      onopentag(name, attrs) {
        if (name === 'body') {
          parser.pause();
          return;
        }
        if (name === 'title') inTitle = true;
        if (name === 'link' && isOEmbedLink(attrs)) oembedHref ??= attrs.href!.trim();
        if (name !== 'meta' || typeof attrs.content !== 'string') return;
        const key = (attrs.property ?? attrs.name ?? '').trim();
        const value = attrs.content.trim().slice(0, MAX_VALUE_CHARS);
        if (/^og:[A-Za-z0-9_:.-]+$/.test(key) && !(key in og) && count < MAX_TAGS) {
          og[key] = value;
          count++;
        } else if (key.toLowerCase() === 'description') {
          description ??= value;
        }
      },
      ontext(text) {
        if (inTitle && title.length < MAX_VALUE_CHARS) title += text;
      },
      onclosetag(name) {
        if (name === 'title') inTitle = false;
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  parser.write(html);
  parser.end();
  const cleanTitle = title.replace(/\s+/g, ' ').trim();
  if (!og['og:title'] && cleanTitle) og['og:title'] = cleanTitle.slice(0, MAX_VALUE_CHARS);
  if (!og['og:description'] && description) og['og:description'] = description;
  return { og, oembedHref };
}

function isOEmbedLink(attrs: Record<string, string | undefined>): boolean {
  const rel = (attrs.rel ?? '').toLowerCase().split(/\s+/);
  return rel.includes('alternate') && attrs.type?.trim().toLowerCase() === OEMBED_JSON_TYPE && typeof attrs.href === 'string' && attrs.href.trim() !== '';
}

/** The text of an HTML body in the charset its Content-Type names (UTF-8 when none or unknown). */
export function decodeHtml(body: Buffer, contentType: string): string {
  const charset = /charset\s*=\s*"?([A-Za-z0-9_-]+)/i.exec(contentType)?.[1] ?? 'utf-8';
  try {
    return new TextDecoder(charset).decode(body);
  } catch {
    return new TextDecoder('utf-8').decode(body);
  }
}
