/** Shared by the relay tests: fixtures, a silent logger, an in-memory store, quick configs. */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../../src/relay/logger.js';
import type { EventStore, InsertResult, NewEvent, StoreReadiness, StoredEvent } from '../../../src/relay/outbox/store.js';
import type { RelayConfig, RouteConfig } from '../../../src/relay/config/index.js';
import { loadConfig } from '../../../src/relay/config/index.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURES = resolve(REPO_ROOT, 'test/fixtures');

export interface SignatureVector {
  readonly description: string;
  readonly secret: string;
  readonly body: string;
  readonly 'saucelabs-sign': string;
}

export function signatureVectors(): SignatureVector[] {
  return (JSON.parse(readFileSync(join(FIXTURES, 'signatures.json'), 'utf8')) as { vectors: SignatureVector[] }).vectors;
}

export function sauceFixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, 'sauce', name));
}

export function sauceFixtureNames(): string[] {
  return readdirSync(join(FIXTURES, 'sauce'))
    .filter((f) => f.endsWith('.json'))
    .sort();
}

export const silentLogger = createLogger({ level: 'silent' });

/** A config from env only, failing the test on errors. */
export function quickConfig(env: Record<string, string>): RelayConfig {
  const r = loadConfig(env);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

export function route(overrides: Partial<RouteConfig> = {}): RouteConfig {
  return {
    name: 'r',
    path: '/webhook/r',
    secrets: ['s3cr3t-token'],
    repo: 'acme/web',
    repoFromTags: false,
    allow: ['acme/web'],
    filters: { families: null, failedOnly: false, teamId: null, orgId: null, owner: null, build: null, project: null },
    eventType: 'saucelabs',
    region: 'us-west-1',
    allowUnsigned: false,
    urlToken: null,
    ...overrides,
  };
}

/** In-memory EventStore: enough for the handler's contract (insert + dedup); `down` makes it fail. */
export class MemoryStore implements EventStore {
  readonly events: StoredEvent[] = [];
  down = false;
  private seq = 0;
  async insert(event: NewEvent, dedupWindowMs: number): Promise<InsertResult> {
    if (this.down) throw new Error('disk full');
    const dup = this.events.find((e) => e.route === event.route && e.bodyHash === event.bodyHash && event.receivedAt - e.receivedAt < dedupWindowMs);
    if (dup) return { kind: 'duplicate', id: dup.id };
    const id = `ev-${++this.seq}`;
    this.events.push({ ...event, id, state: 'pending', attempts: 0, nextAttemptAt: event.receivedAt, lastError: null });
    return { kind: 'stored', id };
  }
  async claim(): Promise<StoredEvent[]> {
    return [];
  }
  async markDelivered(): Promise<number> {
    return 0;
  }
  async markRetry(): Promise<number> {
    return 0;
  }
  async markDead(): Promise<number> {
    return 0;
  }
  async release(): Promise<number> {
    return 0;
  }
  async list(): Promise<StoredEvent[]> {
    return this.events;
  }
  async requeue(): Promise<boolean> {
    return false;
  }
  async stats() {
    return { pending: this.events.length, delivered: 0, dead: 0 };
  }
  async prune(): Promise<number> {
    return 0;
  }
  async readiness(): Promise<StoreReadiness> {
    return this.down ? { ready: false, code: 'unreachable', reason: 'disk full' } : { ready: true };
  }
  async close(): Promise<void> {}
}

/** Poll `cond` (every 10 ms) until it holds; fail with `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
