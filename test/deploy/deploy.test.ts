/**
 * The deployment examples in deploy/ (shown in the README) are files that work, not prose:
 * - the systemd unit passes `systemd-analyze verify` with no warning;
 * - the nginx server block, run by a real nginx with a throwaway certificate in front of a real
 *   relay process, passes a signed webhook through byte for byte (202 stored), answers 413 itself
 *   for a body over the cap, and keeps /healthz and /metrics private.
 * Where nginx or systemd-analyze is missing, those tests are skipped with one line saying so.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { REPO_ROOT, sauceFixture } from '../relay/support/common.js';
import { ensureBuilt, startRelayProcess, tempDir, type RelayProcess } from '../relay/support/process.js';
import { signBody } from '../../src/relay/http/signature.js';
import { freePort } from '../support/ports.js';

const UNIT = join(REPO_ROOT, 'deploy', 'sauce-relay.service');
const NGINX_CONF = join(REPO_ROOT, 'deploy', 'nginx.conf');
const SECRET = 'deploy-example-secret';

function findBinary(name: string, places: readonly string[]): string | null {
  for (const p of places) if (existsSync(p)) return p;
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return found.status === 0 && found.stdout.trim() !== '' ? found.stdout.trim() : null;
}

const nginx = findBinary('nginx', ['/usr/sbin/nginx']);
const systemdAnalyze = findBinary('systemd-analyze', ['/usr/bin/systemd-analyze']);
const skipped = [nginx ? null : 'nginx (apt-get install nginx-light)', systemdAnalyze ? null : 'systemd-analyze (apt-get install systemd)'].filter(Boolean);
if (skipped.length > 0) console.log(`deploy tests skipped: ${skipped.join(' and ')} not found; .ci/run installs them`);

describe('the README shows the deploy files as they are', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  it.each([UNIT, NGINX_CONF])('%s', (file) => {
    expect(readme).toContain(readFileSync(file, 'utf8').trimEnd());
  });
});

(systemdAnalyze ? describe : describe.skip)('deploy/sauce-relay.service', () => {
  it('passes systemd-analyze verify without a warning', () => {
    ensureBuilt();
    const dir = tempDir('unit-');
    try {
      // The two host paths the unit names: the installed command and the secrets file.
      const unit = readFileSync(UNIT, 'utf8')
        .replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath} ${join(REPO_ROOT, 'lib/relay/cli.js')}`)
        .replace(/^EnvironmentFile=\S+/m, `EnvironmentFile=${join(dir, 'relay.env')}`);
      expect(unit).not.toBe(readFileSync(UNIT, 'utf8'));
      writeFileSync(join(dir, 'relay.env'), `SAUCE_WEBHOOK_SECRET=${SECRET}\n`);
      writeFileSync(join(dir, 'sauce-relay.service'), unit);
      const r = spawnSync(systemdAnalyze!, ['verify', '--man=no', join(dir, 'sauce-relay.service')], { encoding: 'utf8' });
      expect({ status: r.status, stderr: r.stderr.trim() }).toEqual({ status: 0, stderr: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

interface Answer {
  status: number;
  body: string;
}

(nginx ? describe : describe.skip)('deploy/nginx.conf in front of a relay process', () => {
  let dir: string;
  let relay: RelayProcess;
  let proxy: ChildProcess;
  let port: number;
  let cert: string;

  const call = (method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, method, path, ca: cert, servername: 'localhost', headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      req.end(body);
    });

  beforeAll(async () => {
    dir = tempDir('nginx-');
    chmodSync(dir, 0o755);
    for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'logs']) mkdirSync(join(dir, sub));
    const certificate = 'req -x509 -newkey rsa:2048 -nodes -days 1 -keyout key.pem -out cert.pem -subj /CN=localhost -addext subjectAltName=DNS:localhost';
    execFileSync('openssl', certificate.split(' '), {
      cwd: dir,
      env: { ...process.env, OPENSSL_CONF: '/dev/null' },
      stdio: 'ignore',
      input: '',
    });
    relay = await startRelayProcess({ env: { SAUCE_WEBHOOK_SECRET: SECRET } });
    port = await freePort();
    const relayPort = new URL(relay.url).port;
    const server = readFileSync(NGINX_CONF, 'utf8')
      .replace('listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`)
      .replace(/ssl_certificate\s+\S+;/, `ssl_certificate ${join(dir, 'cert.pem')};`)
      .replace(/ssl_certificate_key\s+\S+;/, `ssl_certificate_key ${join(dir, 'key.pem')};`)
      .replace('proxy_pass http://127.0.0.1:8080;', `proxy_pass http://127.0.0.1:${relayPort};`);
    expect(server).toContain(`proxy_pass http://127.0.0.1:${relayPort};`);
    const user = process.getuid?.() === 0 ? 'user root;\n' : '';
    writeFileSync(
      join(dir, 'nginx.conf'),
      `${user}daemon off;\nworker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/logs/error.log warn;\nevents { worker_connections 64; }\n` +
        `http {\n access_log off;\n client_body_temp_path ${dir}/body;\n proxy_temp_path ${dir}/proxy;\n fastcgi_temp_path ${dir}/fastcgi;\n` +
        ` uwsgi_temp_path ${dir}/uwsgi;\n scgi_temp_path ${dir}/scgi;\n${server}\n}\n`,
    );
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    proxy = spawn(nginx!, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
    const deadline = Date.now() + 15_000;
    for (;;) {
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (up) break;
      if (Date.now() > deadline || proxy.exitCode !== null) throw new Error(`nginx did not start: ${readFileSync(join(dir, 'logs/error.log'), 'utf8')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 60_000);

  afterAll(async () => {
    proxy?.kill('SIGQUIT');
    await relay?.kill('SIGTERM');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('passes a signed webhook through byte for byte: 202 stored', async () => {
    const body = sauceFixture('job-vdc-passed.json');
    const answer = await call('POST', '/webhook', body, { 'content-type': 'application/json', 'saucelabs-sign': signBody(SECRET, body) });
    expect(answer.status).toBe(202);
    expect(JSON.parse(answer.body)).toMatchObject({ status: 'stored' });
  });

  it('answers 413 itself for a body over client_max_body_size; the relay never reads it', async () => {
    const body = Buffer.alloc(300 * 1024, 0x20);
    const answer = await call('POST', '/webhook', body, { 'saucelabs-sign': signBody(SECRET, body) });
    expect(answer.status).toBe(413);
    expect(answer.body).toContain('nginx');
  });

  it.each(['/healthz', '/readyz', '/metrics'])('keeps %s off the public side (404)', async (path) => {
    const answer = await call('GET', path);
    expect(answer.status).toBe(404);
    // The relay itself answers it (on loopback, for the load balancer and Prometheus).
    expect((await fetch(`${relay.url}${path}`)).status).not.toBe(404);
  });
});
