/**
 * Structured JSON logs (pino). Secrets and tokens are redacted wherever they might appear;
 * full payloads are logged only at debug level by the callers.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const REDACT = [
  'secret',
  'secrets',
  'token',
  'privateKey',
  'accessKey',
  'authorization',
  '*.secret',
  '*.secrets',
  '*.token',
  '*.privateKey',
  '*.accessKey',
  '*.authorization',
  'headers.authorization',
  'headers["saucelabs-sign"]',
  'req.headers.authorization',
  'req.headers["saucelabs-sign"]',
];

export function createLogger(options: { level?: LevelWithSilent; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = options.level ?? ((process.env.LOG_LEVEL as LevelWithSilent | undefined) || 'info');
  const opts = { level, base: { svc: 'sauce-relay' }, redact: { paths: REDACT, censor: '[redacted]' } };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}
