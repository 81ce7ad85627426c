/**
 * What the relay stores beside a Visual event, and how it reaches GitHub: an older SQLite file gains
 * the watches' `extra` column, and the dispatcher puts an event's `extra` in its entry's `relay` field.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { planDispatches } from '../../../src/relay/outbox/dispatcher.js';
import { openSqliteStore, type SqliteEventStore } from '../../../src/relay/outbox/sqlite-store.js';
import type { StoredEvent } from '../../../src/relay/outbox/store.js';
import { T0, contractWatch } from '../outbox/store-contract.js';

const watch = contractWatch;

// The contract suite (store-contract.ts) checks what `extra` does on both stores; this is SQLite's migration.
describe('SQLite: an older file gains the watches’ extra column', () => {
  let store: SqliteEventStore;
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'watch-extra-'));
    store = openSqliteStore(dir);
  });
  afterEach(async () => store.close());

  test('a schema-4 file whose visual_watches has no extra column gets it, and keeps its watches', async () => {
    await store.watchVisual(watch('old'));
    await store.close();
    const db = new Database(join(dir, 'relay.db'));
    db.exec('ALTER TABLE visual_watches DROP COLUMN extra');
    db.pragma('user_version = 4');
    db.close();
    store = openSqliteStore(dir);
    const [w] = await store.listVisualWatches(10);
    expect(w).toMatchObject({ buildId: 'old', extra: null });
    await store.rescheduleVisualWatch('default', 'old', T0 + 1, { extra: '{"diffs":2}' });
    expect((await store.listVisualWatches(10))[0]!.extra).toBe('{"diffs":2}');
  });
});

describe('the dispatcher: extra → the entry’s relay field', () => {
  const event = (n: number, extra: string | null): StoredEvent => ({
    id: `ev-${n}`,
    route: 'default',
    repo: 'acme/shop',
    eventType: 'saucelabs',
    body: JSON.stringify({ build_id: `b${n}`, status: 'QUEUED', summary: { queued: 1 } }),
    bodyHash: `h${n}`,
    receivedAt: T0 + n,
    state: 'pending',
    attempts: 0,
    nextAttemptAt: 0,
    lastError: null,
    extra,
  });
  test.each([
    [
      'a JSON object',
      '{"stuck":{"since":"2026-01-01T00:00:00.000Z","after_ms":1,"at":"2026-01-01T00:00:00.000Z"}}',
      { stuck: { since: '2026-01-01T00:00:00.000Z', after_ms: 1, at: '2026-01-01T00:00:00.000Z' } },
    ],
    ['none', null, undefined],
    ['not JSON: left out, the event still goes', '{oops', undefined],
    ['not an object: left out', '[1,2]', undefined],
  ])('%s', (_name, extra, relay) => {
    const { dispatches, rejected } = planDispatches([event(1, extra)]);
    expect(rejected).toEqual([]);
    const [entry] = (dispatches[0]!.clientPayload as { events: Record<string, unknown>[] }).events;
    expect(entry!.relay).toEqual(relay);
    expect('relay' in entry!).toBe(relay !== undefined);
    expect(entry!.payload).toEqual(JSON.parse(event(1, null).body));
  });
});
