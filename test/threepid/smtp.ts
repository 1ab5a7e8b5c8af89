/** An SMTP server on loopback that keeps what it receives, for tests of the emails the server sends. */
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  to: string[];
  raw: string;
  /** The body with quoted-printable soft breaks and escapes undone. */
  text: string;
}

function decodeQuotedPrintable(s: string): string {
  const bytes = s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

export class TestSmtp {
  readonly mails: ReceivedMail[] = [];
  private waiters: (() => void)[] = [];
  private server!: SMTPServer;
  port = 0;

  /** Listens on `port` (any free one by default). */
  async start(port = 0): Promise<void> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          this.mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw, text: decodeQuotedPrintable(raw) });
          for (const w of this.waiters.splice(0)) w();
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', () => resolve()));
    this.port = (this.server.server.address() as { port: number }).port;
  }

  /** The next mail to `to` after the first `after` mails, waiting for it to arrive. */
  async mailTo(to: string, after: number, timeoutMs = 10_000): Promise<ReceivedMail> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.mails.slice(after).find((m) => m.to.includes(to));
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no mail to ${to} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200).unref();
      });
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The code and link of a validation email. */
export function tokenOf(mail: ReceivedMail): { token: string; link: string } {
  const token = /Matrix client: ([A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
  const link = /(https?:\/\/\S+submit_token\?\S+)/.exec(mail.text)?.[1];
  if (!token || !link) throw new Error(`no token in mail:\n${mail.text}`);
  return { token, link };
}
