/**
 * The durable limit: row 2 plus the least a receiver must do to answer only after the event is
 * durable. It verifies the HMAC over the raw bytes and parses the JSON as row 2 does, then queues
 * the raw body; every body queued in one turn of the event loop is inserted in ONE transaction
 * (SQLite, WAL, `synchronous=FULL`: the COMMIT fsyncs the WAL) and each request is answered 202
 * only after that COMMIT returned. No validation, routing, dedup, dispatch or logging.
 *
 * The storage is durable-store.ts (shared with the store-only bench). argv[2]: the directory for
 * its database file.
 */
import { createServer } from 'node:http';
import { verifiedJson } from './verified.js';
import { announce } from './announce.js';
import { openDurableStore } from './durable-store.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: durable.js <data dir>');
const store = openDurableStore(dir);

const server = createServer(
  verifiedJson((text, res) => {
    store.put(text, (error) => {
      if (error === undefined) {
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end('{"status":"stored"}');
      } else {
        res.writeHead(503);
        res.end();
      }
    });
  }),
);
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => announce(server));
process.on('SIGTERM', () => {
  server.close();
  store.close();
  process.exit(0);
});
