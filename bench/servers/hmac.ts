/** Row 2, the least any verifying receiver must do: read, HMAC-SHA256 verify in constant time, JSON.parse, 202. */
import { createServer } from 'node:http';
import { announce } from './announce.js';
import { verifiedJson } from './verified.js';

const server = createServer(
  verifiedJson((_text, res) => {
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  }),
);
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => announce(server));
