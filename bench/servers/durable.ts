/**
 * The durable limit: row 2 plus the least a receiver must do to answer only after the event is
 * durable. It verifies the HMAC over the raw bytes and parses the JSON as row 2 does, then queues
 * the raw body; every body queued in one turn of the event loop is inserted in ONE transaction
 * (SQLite, WAL, `synchronous=FULL`: the COMMIT fsyncs the WAL) and each request is answered 202
 * only after that COMMIT returned. No validation, routing, dedup, dispatch or logging.
 *
 * argv[2]: the directory for its database file.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BENCH_SECRET } from '../body.js';
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

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const expected = createHmac('sha256', BENCH_SECRET).update(body).digest();
    const given = Buffer.from(String(req.headers['saucelabs-sign'] ?? ''), 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      res.writeHead(401);
      res.end();
      return;
    }
    const text = body.toString('utf8');
    try {
      JSON.parse(text);
    } catch {
      res.writeHead(400);
      res.end();
      return;
    }
    queue.push({ body: text, res });
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => announce(server));
process.on('SIGTERM', () => {
  server.close();
  db.close();
  process.exit(0);
});
