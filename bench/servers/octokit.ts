/**
 * Row 3, the best-known public peer: @octokit/webhooks' createNodeMiddleware verifying the same
 * body. It speaks GitHub's header names, so the load generator sends the same signature as
 * `x-hub-signature-256: sha256=<hex>` for this row.
 */
import { createServer } from 'node:http';
import { Webhooks, createNodeMiddleware } from '@octokit/webhooks';
import { BENCH_SECRET } from '../body.js';
import { announce } from './announce.js';

const webhooks = new Webhooks({ secret: BENCH_SECRET });
webhooks.onAny(() => {});
const middleware = createNodeMiddleware(webhooks, { path: '/webhook' });
const server = createServer((req, res) => {
  void middleware(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => announce(server));
