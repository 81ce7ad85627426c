/** `RELAY_DATABASE_URL` / `database_url`: the PostgreSQL store, never shown with its password. */
import { describe, expect, test } from '@jest/globals';
import { describeConfig, loadConfig, parseConfigText } from '../../../src/relay/config/index.js';
import { databaseUrlProblem, shownDatabaseUrl } from '../../../src/relay/config/url.js';

const ROUTES = 'routes:\n  - name: web\n    secret: s\n    repo: acme/web\n';

describe('database URL (pure)', () => {
  test.each([
    ['postgres://relay:pw@db.internal:5432/relay', null],
    ['postgresql://db.internal/relay?sslmode=require', null],
    ['mysql://db.internal/relay', 'not-postgres'],
    ['https://db.internal/relay', 'not-postgres'],
    ['db.internal:5432', 'not-postgres'],
    ['not a url', 'not-a-url'],
    ['postgres:///relay', 'no-host'],
    ['postgres:///relay?host=/var/run/postgresql', null],
  ])('%s → %s', (url, problem) => {
    expect(databaseUrlProblem(url)).toBe(problem);
  });

  test('shown without the password or the query', () => {
    expect(shownDatabaseUrl('postgres://relay:s3cret@db.internal:5432/relay?password=other&sslmode=require')).toBe('postgres://relay@db.internal:5432/relay');
    expect(shownDatabaseUrl('postgres://db.internal/relay')).toBe('postgres://db.internal/relay');
  });
});

describe('the setting', () => {
  test('unset: the SQLite store, as before', () => {
    const r = loadConfig({});
    expect(r.ok && r.config.databaseUrl).toBeNull();
    expect(r.ok && describeConfig(r.config).store).toBe('sqlite');
  });

  test('from the environment; described without its password', () => {
    const r = loadConfig({ RELAY_DATABASE_URL: ' postgres://relay:s3cret@db.internal:5432/relay ' });
    if (!r.ok) throw new Error(r.errors.join('\n'));
    expect(r.config.databaseUrl).toBe('postgres://relay:s3cret@db.internal:5432/relay');
    const described = JSON.stringify(describeConfig(r.config));
    expect(described).toContain('"store":"postgres postgres://relay@db.internal:5432/relay"');
    expect(described).not.toContain('s3cret');
  });

  test('from the file, with ${VAR}; the file wins over the environment', () => {
    const env = { DB_PASSWORD: 'from-env', RELAY_DATABASE_URL: 'postgres://other/x' };
    const r = parseConfigText(`database_url: postgres://relay:\${DB_PASSWORD}@db.internal/relay\n${ROUTES}`, env, 'relay.yaml');
    if (!r.ok) throw new Error(r.errors.join('\n'));
    expect(r.config.databaseUrl).toBe('postgres://relay:from-env@db.internal/relay');
  });

  test('a wrong URL is refused with the fix, and the message never shows the password', () => {
    const r = loadConfig({ RELAY_DATABASE_URL: 'mysql://relay:s3cret@db.internal/relay' });
    expect(r.ok).toBe(false);
    const errors = r.ok ? [] : r.errors;
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^RELAY_DATABASE_URL: "mysql:\/\/relay@db.internal\/relay" is not a postgres:\/\/ URL: write e\.g\. postgres:\/\//);
    expect(errors.join('\n')).not.toContain('s3cret');
    const file = parseConfigText(`database_url: "not a url s3cret"\n${ROUTES}`, {}, 'relay.yaml');
    expect(file.ok ? [] : file.errors).toEqual([expect.stringMatching(/^relay\.yaml: database_url: the value is not a URL/)]);
    expect((file.ok ? [] : file.errors).join('\n')).not.toContain('s3cret');
  });
});
