import { Writable } from 'node:stream';
import { createLogger } from '../../src/relay/logger.js';

function capture(level?: 'debug' | 'warn' | null) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}

describe('createLogger takes the validated level and never reads LOG_LEVEL itself', () => {
  const saved = process.env.LOG_LEVEL;
  afterEach(() => {
    if (saved === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = saved;
  });

  test.each([
    ['verbose', undefined, 'info'],
    ['debug', null, 'info'],
    ['debug', 'warn', 'warn'],
  ] as const)('LOG_LEVEL=%s in the environment, level %j → %s', (envLevel, level, expected) => {
    process.env.LOG_LEVEL = envLevel;
    expect(capture(level).logger.level).toBe(expected);
  });

  test('secrets are redacted', () => {
    const { logger, lines } = capture('debug');
    logger.info({ secret: 's3cr3t', github: { token: 'ghs_x' } }, 'x');
    expect(lines.join('')).not.toMatch(/s3cr3t|ghs_x/);
  });
});
