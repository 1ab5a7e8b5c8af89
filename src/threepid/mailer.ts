/**
 * Outgoing email over SMTP (the `email` config), through nodemailer. One transport (a small
 * pool of connections) per process; every node sends its own mail, nothing is shared.
 *
 * nodemailer is loaded on the first send, not at start-up: most servers never send mail. The
 * bundle leaves it in node_modules (scripts/bundle.mjs).
 */
import type { Transporter } from 'nodemailer';
import type { EmailConfig } from '../config/schema.js';

export interface OutgoingEmail {
  to: string;
  subject: string;
  text: string;
  html?: string;
}

/** The SMTP server refused the message or could not be reached. */
export class MailNotSent extends Error {}

export class Mailer {
  private transport: Promise<Transporter> | undefined;

  constructor(private readonly config: EmailConfig) {}

  private connect(): Promise<Transporter> {
    const config = this.config;
    const port = config.smtp_port;
    this.transport ??= import('nodemailer').then(({ createTransport }) =>
      createTransport({
        host: config.smtp_host,
        port,
        // Port 465 speaks TLS from the first byte; elsewhere STARTTLS is used when offered.
        secure: port === 465,
        requireTLS: config.require_transport_security,
        auth: config.smtp_user ? { user: config.smtp_user, pass: config.smtp_pass } : undefined,
        pool: true,
        maxConnections: 2,
        connectionTimeout: 15_000,
        greetingTimeout: 15_000,
        socketTimeout: 30_000,
      }),
    );
    return this.transport;
  }

  async send(mail: OutgoingEmail): Promise<void> {
    try {
      const transport = await this.connect();
      await transport.sendMail({ from: this.config.notif_from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
    } catch (e) {
      throw new MailNotSent(`Could not send email through ${this.config.smtp_host}:${this.config.smtp_port}: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    if (this.transport) (await this.transport).close();
  }
}
