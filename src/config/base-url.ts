import type { HearthConfig } from './schema.js';

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]', '']);

/**
 * The base URL clients are sent to (`/.well-known/matrix/client`), without a trailing slash.
 *
 * An explicit `public_baseurl` wins: behind a reverse proxy only the operator knows it. Without
 * one, the URL is derived from where this server listens, so that the answer always reaches it:
 * the listen host when it names one interface, the server name's host when listening on all
 * interfaces (the name is what points at this machine), and the port actually bound (`listen`
 * may say port 0). Serving no well-known document instead would leave clients that discover
 * by server name with nothing, and `http://<server name>/` (port 80) reaches nobody.
 */
export function clientBaseUrl(config: HearthConfig, boundPort?: number): string {
  if (config.public_baseurl) return config.public_baseurl.replace(/\/+$/, '');
  const m = /^(.*):(\d+)$/.exec(config.listen);
  const listenHost = m ? m[1] : config.listen;
  const port = boundPort || (m ? Number(m[2]) : 8008);
  let host = WILDCARD_HOSTS.has(listenHost) ? serverNameHost(config.server_name) : listenHost;
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  return `${config.tls.certificate_path ? 'https' : 'http'}://${host}:${port}`;
}

/** The host part of a server name (`example.org:8448` -> `example.org`, `[::1]:8448` -> `[::1]`). */
function serverNameHost(serverName: string): string {
  if (serverName.startsWith('[')) return serverName.slice(0, serverName.indexOf(']') + 1);
  return serverName.replace(/:\d+$/, '');
}
