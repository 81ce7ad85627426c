/** The throwaway PostgreSQL server the store tests use: it starts, answers, restarts and goes away. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';
import { postgresAvailable, skipLine, startPostgres } from './postgres.js';

const psql = (url: string, sql: string) => spawnSync('psql', [url, '-Atqc', sql], { encoding: 'utf8' });

if (!postgresAvailable()) console.log(skipLine('test/support/postgres.test.ts'));

(postgresAvailable() ? describe : describe.skip)('startPostgres', () => {
  it('starts a server on loopback that keeps data across a restart, then removes it', async () => {
    const pg = await startPostgres();
    try {
      expect(psql(pg.url, 'CREATE TABLE t (n int); INSERT INTO t VALUES (41)').status).toBe(0);
      if (!process.env.RELAY_TEST_DATABASE_URL) {
        await pg.stop();
        expect(psql(pg.url, 'SELECT 1').status).not.toBe(0);
        await pg.start();
      }
      expect(psql(pg.url, 'SELECT n + 1 FROM t').stdout.trim()).toBe('42');
    } finally {
      await pg.close();
    }
    expect(psql(pg.url, 'SELECT 1').status).not.toBe(0);
  }, 60_000);
});
