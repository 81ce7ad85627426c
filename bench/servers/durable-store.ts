/**
 * The durable limit's storage: raw bodies into SQLite (WAL, `synchronous=FULL`), every body queued
 * in one turn of the event loop inserted in ONE transaction, each `put` told only after that COMMIT
 * returned. The durable limit (durable.ts) serves it over HTTP; the store-only bench
 * (bench/store.ts) calls it directly, beside the relay's store.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';

export interface DurableStore {
  /** `done` is called once the body is committed, with the error if its transaction failed (a callback, not a promise: the limit stays as lean as it was). */
  put(body: string, done: (error?: unknown) => void): void;
  close(): void;
}

export function openDurableStore(dir: string): DurableStore {
  const db = new Database(join(dir, 'durable.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const insert = db.prepare<[string]>('INSERT INTO events (body) VALUES (?)');
  const commit = db.transaction((bodies: string[]) => {
    for (const body of bodies) insert.run(body);
  });
  let queue: { body: string; done: (error?: unknown) => void }[] = [];
  let scheduled = false;

  function flush(): void {
    scheduled = false;
    const batch = queue;
    queue = [];
    let failure: unknown = null;
    try {
      commit.immediate(batch.map((q) => q.body));
    } catch (error) {
      failure = error;
    }
    for (const q of batch) q.done(failure ?? undefined);
  }

  return {
    put(body, done) {
      queue.push({ body, done });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    close: () => db.close(),
  };
}
