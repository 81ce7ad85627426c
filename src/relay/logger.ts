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

/**
 * `level` is the validated `LOG_LEVEL` / `log_level` (the config's `logLevel`); null or absent =
 * info. The environment is not read here: the config loader validates it once for everyone.
 */
export function createLogger(options: { level?: LevelWithSilent | null; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = options.level ?? 'info';
  const opts = { level, base: { svc: 'sauce-relay' }, redact: { paths: REDACT, censor: '[redacted]' } };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}
