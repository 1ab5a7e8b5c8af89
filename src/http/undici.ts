/**
 * undici, the HTTP client of every outbound request (federation, push gateways, URL previews,
 * identity servers), imported on first use. Many servers never call out: loading it at start-up
 * would cost them start-up time and the memory it holds for nothing. The bundle leaves it in
 * node_modules (scripts/bundle.mjs).
 */
import type { Agent, Dispatcher } from 'undici';

export type Undici = typeof import('undici');

let undici: Promise<Undici> | undefined;

export function loadUndici(): Promise<Undici> {
  undici ??= import('undici');
  return undici;
}

/** An Agent made with `options` on first use: one never used loads nothing, and closing it closes nothing. */
export class LazyAgent {
  private agent: Promise<Agent> | undefined;

  constructor(private readonly options: Agent.Options) {}

  private get(): Promise<Agent> {
    this.agent ??= loadUndici().then((u) => new u.Agent(this.options));
    return this.agent;
  }

  /** undici's `request` through this agent. */
  async request(url: string | URL, options: Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'dispatcher'> & { method: Dispatcher.HttpMethod }): Promise<Dispatcher.ResponseData> {
    const [{ request }, dispatcher] = await Promise.all([loadUndici(), this.get()]);
    return request(url, { ...options, dispatcher });
  }

  async close(): Promise<void> {
    if (this.agent) await (await this.agent).close();
  }
}
