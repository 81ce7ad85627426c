/**
 * A real browser for the tests: Debian's `chromium` (or `CHROMIUM_PATH`), driven by playwright-core
 * with `executablePath` (playwright never downloads a browser here), headless, in a fresh profile
 * folder that is deleted on close. Where there is no chromium, `browserAvailable()` is false and
 * the callers skip with one visible line (`skipLine`); .ci/run installs it.
 *
 * Screenshots go to `test-artifacts/<name>/` at the repository root (gitignored).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, type Page, chromium } from 'playwright-core';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The flags that work on this machine (and in CI, as root, without a GPU or network). */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;

function findChromium(): string | null {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(p)) ?? null;
}

export const CHROMIUM = findChromium();

export function browserAvailable(): boolean {
  return CHROMIUM !== null;
}

/** The one line a test file prints when it skips for want of a browser. */
export function skipLine(what: string): string {
  return `${what}: skipped, no chromium here (apt-get install chromium, or set CHROMIUM_PATH); .ci/run installs it`;
}

/** `test-artifacts/<name>/`, created empty. */
export function artifactsDir(name: string): string {
  const dir = join(REPO_ROOT, 'test-artifacts', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** What a page did that a test should see: script errors, dialogs (alert, confirm) and CSP refusals. */
export interface PageWatch {
  readonly errors: string[];
  readonly dialogs: string[];
  readonly cspViolations: string[];
}

export function watchPage(page: Page): PageWatch {
  const watch: PageWatch = { errors: [], dialogs: [], cspViolations: [] };
  page.on('pageerror', (err) => watch.errors.push(err.message));
  page.on('console', (msg) => {
    const text = msg.text();
    if (/Content Security Policy|Refused to (?:load|execute|apply|connect|frame)/i.test(text)) watch.cspViolations.push(text);
    else if (msg.type() === 'error' && !/Failed to load resource: the server responded with a status of (?:401|403|404|409)/.test(text))
      watch.errors.push(text);
  });
  page.on('dialog', (dialog) => {
    watch.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return watch;
}

export interface Browser {
  readonly context: BrowserContext;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export async function launchBrowser(options: { viewport?: { width: number; height: number } } = {}): Promise<Browser> {
  if (CHROMIUM === null) throw new Error(skipLine('launchBrowser'));
  const profile = mkdtempSync(join(tmpdir(), 'relay-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_FLAGS],
      viewport: options.viewport ?? { width: 1280, height: 800 },
      timeout: 60_000,
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
  context.setDefaultTimeout(20_000);
  return {
    context,
    newPage: () => context.newPage(),
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
