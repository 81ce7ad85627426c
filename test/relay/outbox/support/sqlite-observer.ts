/**
 * Watching the SQLite store from outside, so the store exposes nothing for its tests:
 * - `walCommits` counts the transactions committed to a WAL file (each commit ends with a frame
 *   whose "database size after commit" is set), so a test sees how many COMMITs a batch cost;
 *   `walLog` also counts the frames (the pages those commits wrote).
 * - `captureConnections` records the connections better-sqlite3 opens and the statements prepared
 *   on them, so a test can read the store's own pragmas and EXPLAIN its real SQL text.
 */
import { existsSync, readFileSync } from 'node:fs';
import { jest } from '@jest/globals';
import Database from 'better-sqlite3';

const WAL_HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;

/** The frames (pages written) and transactions committed in `<dbPath>-wal` since it was last restarted. */
export function walLog(dbPath: string): { frames: number; commits: number } {
  const file = `${dbPath}-wal`;
  if (!existsSync(file)) return { frames: 0, commits: 0 };
  const wal = readFileSync(file);
  if (wal.length < WAL_HEADER_BYTES) return { frames: 0, commits: 0 };
  const pageSize = wal.readUInt32BE(8);
  const salt1 = wal.readUInt32BE(16);
  const salt2 = wal.readUInt32BE(20);
  let frames = 0;
  let commits = 0;
  for (let at = WAL_HEADER_BYTES; at + FRAME_HEADER_BYTES + pageSize <= wal.length; at += FRAME_HEADER_BYTES + pageSize) {
    // Frames left from before a WAL restart carry the old salts: the log ends there.
    if (wal.readUInt32BE(at + 8) !== salt1 || wal.readUInt32BE(at + 12) !== salt2) break;
    frames += 1;
    if (wal.readUInt32BE(at + 4) !== 0) commits += 1;
  }
  return { frames, commits };
}

/** Transactions committed in `<dbPath>-wal` since it was last restarted (0 without a WAL file). */
export function walCommits(dbPath: string): number {
  return walLog(dbPath).commits;
}

export interface Captured {
  /** Connections on which a statement was prepared, in order. */
  readonly connections: Database.Database[];
  /** SQL text of every statement prepared, in order. */
  readonly statements: string[];
  restore(): void;
}

/** Record every `prepare` (and so every connection) from now until `restore()`. */
export function captureConnections(): Captured {
  const connections: Database.Database[] = [];
  const statements: string[] = [];
  const original = Database.prototype.prepare;
  const spy = jest.spyOn(Database.prototype, 'prepare').mockImplementation(function (this: Database.Database, source: string) {
    if (!connections.includes(this)) connections.push(this);
    statements.push(source);
    return original.call(this, source);
  } as typeof original);
  return { connections, statements, restore: () => spy.mockRestore() };
}
