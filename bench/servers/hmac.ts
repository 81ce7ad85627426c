/** Row 2, the least any verifying receiver must do: read, HMAC-SHA256 verify in constant time, JSON.parse, 202. */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { BENCH_SECRET } from '../body.js';
import { announce } from './announce.js';

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
    try {
      JSON.parse(body.toString('utf8'));
    } catch {
      res.writeHead(400);
      res.end();
      return;
    }
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => announce(server));
