/**
 * A GitHub for the relay rows that dispatch for real (bench row 5, `compare.js --github`): it
 * answers every repository_dispatch 204 at once, as GitHub does when all is well, and any other
 * request 200 `{}`. The relay's client paces its dispatches as GitHub asks, as in production.
 */
import { createServer } from 'node:http';

export interface GitHubStub {
  readonly url: string;
  stop(): void;
}

export async function startGitHubStub(): Promise<GitHubStub> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(req.method === 'POST' ? 204 : 200, { 'content-type': 'application/json' });
      res.end(req.method === 'POST' ? undefined : '{}');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, stop: () => server.close() };
}
