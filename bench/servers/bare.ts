/** Row 1, the ceiling: node:http that reads the whole body and answers 204. */
import { createServer } from 'node:http';
import { announce } from './announce.js';

const server = createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(204);
    res.end();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => announce(server));
