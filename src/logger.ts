import { pino, type Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({ level, base: { name: 'hearth' }, timestamp: pino.stdTimeFunctions.isoTime });
}
