/**
 * The durable limit: row 2 plus the least a receiver must do to answer only after the event is
 * durable. It verifies the HMAC over the raw bytes and parses the JSON as row 2 does, then queues
 * the raw body; every body queued in one turn of the event loop is inserted in ONE transaction
 * (SQLite, WAL, `synchronous=FULL`: the COMMIT fsyncs the WAL) and each request is answered 202
 * only after that COMMIT returned. No validation, routing, dedup, dispatch or logging.
 *
 * argv[2]: the directory for its database file.
 */
import { createServer, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { verifiedJson } from './verified.js';
import { announce } from './announce.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: durable.js <data dir>');
const db = new Database(join(dir, 'durable.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec('CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)');
const put = db.prepare<[string]>('INSERT INTO events (body) VALUES (?)');
const commit = db.transaction((bodies: string[]) => {
  for (const body of bodies) put.run(body);
});

let queue: { body: string; res: ServerResponse }[] = [];
let scheduled = false;

function flush(): void {
  scheduled = false;
  const batch = queue;
  queue = [];
  try {
    commit.immediate(batch.map((q) => q.body));
  } catch {
    for (const { res } of batch) {
      res.writeHead(503);
      res.end();
    }
    return;
  }
  for (const { res } of batch) {
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end('{"status":"stored"}');
  }
}

const server = createServer(
  verifiedJson((text, res) => {
    queue.push({ body: text, res });
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  }),
);
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => announce(server));
process.on('SIGTERM', () => {
  server.close();
  db.close();
  process.exit(0);
});
