/** The text of the emails this server sends. */
import type { OutgoingEmail } from './mailer.js';

export type ValidationPurpose = 'register' | 'password' | 'add';

const SUBJECTS: Record<ValidationPurpose, string> = {
  register: 'Confirm your email address to register',
  password: 'Reset your password',
  add: 'Confirm your email address',
};

const WHY: Record<ValidationPurpose, string> = {
  register: 'Someone, hopefully you, asked to register a Matrix account on %s with this address.',
  password: 'Someone, hopefully you, asked to reset the password of your Matrix account on %s.',
  add: 'Someone, hopefully you, asked to add this address to a Matrix account on %s.',
};

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The email carrying a validation token: the link validates at once, the token can be typed into the client instead. */
export function validationEmail(to: string, purpose: ValidationPurpose, serverName: string, token: string, link: string): OutgoingEmail {
  const why = WHY[purpose].replace('%s', serverName);
  const text = `${why}\n\nTo confirm, open this link:\n${link}\n\nor enter this code in your Matrix client: ${token}\n\nIf it was not you, ignore this email.\n`;
  const html =
    `<p>${escapeHtml(why)}</p><p><a href="${escapeHtml(link)}">Confirm</a></p>` +
    `<p>or enter this code in your Matrix client: <code>${escapeHtml(token)}</code></p><p>If it was not you, ignore this email.</p>`;
  return { to, subject: SUBJECTS[purpose], text, html };
}
