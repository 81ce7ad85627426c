/**
 * Row 2's work, which the durable limit repeats before its insert: read the body, verify the
 * HMAC-SHA256 over the raw bytes in constant time (401 if not), parse the JSON (400 if not), and
 * hand the text on. One copy, so the two baselines cannot drift apart.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BENCH_SECRET } from '../body.js';

export function verifiedJson(then: (text: string, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
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
      then(text, res);
    });
  };
}
