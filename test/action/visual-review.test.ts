/**
 * The Visual check run a reviewer can act on (pure): the relay's notes read from the envelope, the
 * outcome of a stuck build, the list of diffs (grouped, escaped, cut to GitHub's limits), the last
 * word of an ended watch, and the state block that keeps all of it.
 */
import { describe, expect, test } from '@jest/globals';
import { CHECK_OUTPUT_MAX_BYTES, utf8Bytes } from '../../src/github/limits.js';
import { formatSpan, visualRecordOutcome } from '../../src/action/mapping.js';
import { extractEvents } from '../../src/action/payload.js';
import { diffRow, renderDiffs, renderVisual } from '../../src/action/render.js';
import { decodeState, encodeState, mergeVisual, type VisualRecord } from '../../src/action/state.js';
import { NO_NOTES, notesToWire, type VisualDiff, type VisualNotes } from '../../src/sauce/visual-notes.js';
import { fixture } from './harness.js';

const T = Date.parse('2026-07-20T12:00:00.000Z');
const HOUR = 3_600_000;
const opts = { pendingState: 'pending' as const, emptyPasses: true };
const diff = (n: number, over: Partial<VisualDiff> = {}): VisualDiff => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  status: 'UNAPPROVED',
  snapshot: `Snapshot ${n}`,
  test: 'pays with a saved card',
  suite: 'Checkout',
  browser: 'CHROME 128.0',
  device: null,
  os: 'WINDOWS 11',
  viewport: '1280x720',
  invalid: null,
  ...over,
});
const record = (over: Partial<VisualRecord> = {}): VisualRecord => ({
  buildId: 'fd54fb6f-83b7-4c0b-af8d-da2b191c0a3b',
  buildName: 'shop-web sha:9fceb02',
  buildUrl: 'https://app.saucelabs.com/visual/builds/fd54fb6f-83b7-4c0b-af8d-da2b191c0a3b',
  project: 'shop-web',
  branch: 'feature/login',
  status: 'UNAPPROVED',
  summary: { errored: 0, approved: 0, equal: 41, rejected: 1, unapproved: 2, queued: 0 },
  receivedAt: T,
  notes: NO_NOTES,
  ...over,
});
const listed = (items: VisualDiff[], totals: VisualNotes['diffs'] extends infer L ? (L extends { totals: infer X } ? X : never) : never): VisualNotes => ({
  ...NO_NOTES,
  diffs: { readAt: T, totals, items },
});
const stuck: VisualNotes = { ...NO_NOTES, stuck: { since: T - 2 * HOUR, afterMs: 2 * HOUR, at: T } };

describe('formatSpan', () => {
  test.each([
    [500, '500 ms'],
    [45_000, '45 s'],
    [2 * HOUR, '2 h'],
    [90 * 60_000, '1 h 30 min'],
    [3 * 24 * HOUR, '3 d'],
    [26 * HOUR + 60_000, '1 d 2 h'],
  ])('%d ms → %s', (ms, text) => expect(formatSpan(ms)).toBe(text));
});

describe('visualRecordOutcome: Sauce’s status, or the relay’s verdict', () => {
  test.each([
    [
      'QUEUED and stuck → error / timed_out',
      record({ status: 'QUEUED', notes: stuck }),
      { state: 'error', checkStatus: 'completed', conclusion: 'timed_out', description: 'Visual build did not finish within 2 h' },
    ],
    ['RUNNING and stuck → the same', record({ status: 'RUNNING', notes: stuck }), { state: 'error', conclusion: 'timed_out' }],
    ['QUEUED, no verdict → pending', record({ status: 'QUEUED' }), { state: 'pending', checkStatus: 'in_progress', conclusion: null }],
    // A verdict beside a final status is never believed over Sauce's word.
    ['APPROVED with a stale verdict → Sauce wins', record({ status: 'APPROVED', notes: stuck }), { state: 'success', conclusion: 'success' }],
    [
      'UNAPPROVED, watch ended → pending, and says so',
      record({ notes: { ...NO_NOTES, watchEnded: { at: T, afterMs: 72 * HOUR } } }),
      { state: 'pending', description: '2 visual changes await review (+1 rejected) (no longer refreshed)' },
    ],
  ])('%s', (_name, v, expected) => expect(visualRecordOutcome(v, opts)).toMatchObject(expected));
});

describe('the envelope’s relay field reaches the record', () => {
  test('a relayed Visual event carries the notes; a job event and a bare event carry none', () => {
    const wire = notesToWire(stuck);
    const r = extractEvents({
      version: 1,
      events: [
        { payload: fixture('visual-queued.json'), relay: wire },
        { payload: fixture('job-vdc-passed.json'), relay: wire },
        { payload: fixture('visual-queued.json'), relay: 'garbage' },
      ],
    });
    if (!r.ok) throw new Error(r.error);
    expect(r.value.events.map((e) => e.notes)).toEqual([stuck, NO_NOTES, NO_NOTES]);
    expect(r.value.rejected).toEqual([]);
  });
});

describe('renderVisual', () => {
  test('the list: grouped (unapproved, rejected first, as the relay sends them), every column, the build link', () => {
    const v = record({
      notes: listed([diff(1), diff(2, { device: 'iPhone 15', os: 'IOS 17', browser: null }), diff(3, { status: 'REJECTED', invalid: 'IMAGE_TOO_LARGE' })], {
        UNAPPROVED: 2,
        REJECTED: 1,
      }),
    });
    const { summary } = renderVisual(v, visualRecordOutcome(v, opts));
    expect(summary).toContain('#### 3 snapshots with changes or errors');
    expect(summary).toContain('| 🟡 unapproved | Snapshot 1 | Checkout › pays with a saved card | CHROME 128.0 | WINDOWS 11 | 1280x720 |');
    expect(summary).toContain('| 🟡 unapproved | Snapshot 2 | Checkout › pays with a saved card | iPhone 15 | IOS 17 | 1280x720 |');
    expect(summary).toContain('| ❌ rejected | Snapshot 3 — invalid: IMAGE\\_TOO\\_LARGE |');
    expect(summary.indexOf('Snapshot 1')).toBeLessThan(summary.indexOf('Snapshot 3'));
    expect(summary).toContain('→ [open the build](https://app.saucelabs.com/visual/builds/fd54fb6f-83b7-4c0b-af8d-da2b191c0a3b)');
    expect(summary).toContain('Read from Sauce by the relay at 2026-07-20 12:00:00 UTC. Links only');
    expect(summary).not.toMatch(/…and \d+ more/);
  });

  test('more diffs than the relay read: "…and N more" with the link to review them', () => {
    const v = record({ summary: { ...record().summary, unapproved: 120 }, notes: listed([diff(1), diff(2)], { UNAPPROVED: 120 }) });
    const { summary } = renderVisual(v, visualRecordOutcome(v, opts));
    expect(summary).toContain('#### 120 snapshots with changes or errors');
    expect(summary).toContain('…and 118 more: [review them in Sauce](https://app.saucelabs.com/visual/builds/fd54fb6f-83b7-4c0b-af8d-da2b191c0a3b)');
  });

  test('without notes, or for a status that lists nothing: the check run as before', () => {
    const plain = record();
    const before = renderVisual(plain, visualRecordOutcome(plain, opts)).summary;
    expect(before).not.toContain('####');
    const approved = record({ status: 'APPROVED', notes: listed([diff(1)], { UNAPPROVED: 1 }) });
    expect(renderVisual(approved, visualRecordOutcome(approved, opts)).summary).not.toContain('Snapshot 1');
  });

  test('hostile snapshot names stay text: no HTML, no links, no table breaks, no markdown', () => {
    const names = [
      '<img src=x onerror=alert(1)>',
      '[click](https://evil.example/x)',
      '| fake | row |\n| --- |',
      '**bold** _it_ `code` ~~s~~ # h',
      '<!-- sauce-labs-bridge:state {"v":1} -->',
      'x\u202Eevil\u200Bname',
      '@octocat www.evil.example',
    ];
    for (const name of names) {
      const row = diffRow(diff(1, { snapshot: name, test: name, suite: name, device: name, os: name, viewport: name, invalid: name }));
      expect(row).not.toMatch(/<img|<!--|\]\(https?:|\*\*bold|\u202E|evil\u200Bname|@octocat/);
      // The row is one table row: exactly 7 unescaped pipes, one line.
      expect(row.split('\n')).toHaveLength(1);
      expect(row.replace(/\\\|/g, '').split('|')).toHaveLength(8);
    }
  });

  test('a list that cannot fit: rows cut at GitHub’s 65,535 bytes, with "…and N more", the build line kept', () => {
    const huge = Array.from({ length: 100 }, (_, i) =>
      diff(i, { snapshot: `${'<b>|x|</b>'.repeat(20)}${i}`.slice(0, 200), test: 't'.repeat(100), suite: 's'.repeat(100) }),
    );
    const v = record({ summary: { ...record().summary, unapproved: 100 }, notes: listed(huge, { UNAPPROVED: 100 }) });
    const max = 12_000;
    const { summary } = renderVisual(v, visualRecordOutcome(v, opts), max);
    expect(utf8Bytes(summary)).toBeLessThanOrEqual(max);
    const rows = summary.split('\n').filter((l) => l.startsWith('| 🟡'));
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThan(100);
    expect(summary).toContain(`…and ${100 - rows.length} more: [review them in Sauce]`);
    expect(summary).toMatch(/Build: \*\*shop-web sha:9fceb02\*\* .* Sauce status `UNAPPROVED`\n$/);
    // At the real limit the whole list fits.
    expect(utf8Bytes(renderVisual(v, visualRecordOutcome(v, opts)).summary)).toBeLessThanOrEqual(CHECK_OUTPUT_MAX_BYTES);
  });

  test('renderDiffs alone never exceeds its budget, however small', () => {
    const list = { readAt: T, totals: { UNAPPROVED: 3 }, items: [diff(1), diff(2), diff(3)] };
    for (const budget of [0, 10, 200, 400, 800]) expect(utf8Bytes(renderDiffs(list, null, budget))).toBeLessThanOrEqual(budget);
  });

  test('stuck: the relay’s verdict, marked as such, with what to do', () => {
    const v = record({ status: 'QUEUED', summary: { ...record().summary, unapproved: 0, rejected: 0, queued: 5 }, notes: stuck });
    const o = visualRecordOutcome(v, opts);
    const { title, summary } = renderVisual(v, o);
    expect(title).toBe('Visual build did not finish within 2 h');
    expect(summary).toContain("This is the relay's verdict, not Sauce's.** Sauce still reports this build as `QUEUED`");
    expect(summary).toContain('The relay first saw it at 2026-07-20 10:00:00 UTC and found it unfinished 2 h later (2026-07-20 12:00:00 UTC)');
    expect(summary).toContain("**Re-run the tests**, or finish the build in Sauce (Sauce Visual's `finishBuild`");
    expect(summary).toContain('**Re-run the tests, or finish the build in Sauce \\(finishBuild\\) → [open the build]');
  });

  test('the watch ended: when, and how to refresh by hand, with the event to paste', () => {
    const v = record({ notes: { ...listed([diff(1)], { UNAPPROVED: 2 }), watchEnded: { at: T, afterMs: 72 * HOUR } } });
    const { summary } = renderVisual(v, visualRecordOutcome(v, opts));
    expect(summary).toContain('The relay stopped re-reading this build at 2026-07-20 12:00:00 UTC**, 3 d after its first webhook (`RELAY_VISUAL_REFRESH_FOR`)');
    expect(summary).toContain('run this workflow by hand (`workflow_dispatch`) with the event below as the `payload` input');
    const json = /```text\n(.*)\n```/.exec(summary)?.[1];
    expect(JSON.parse(json!)).toEqual({
      build_id: 'fd54fb6f-83b7-4c0b-af8d-da2b191c0a3b',
      build_name: 'shop-web sha:9fceb02',
      build_url: 'https://app.saucelabs.com/visual/builds/fd54fb6f-83b7-4c0b-af8d-da2b191c0a3b',
      project: 'shop-web',
      branch: 'feature/login',
      status: 'APPROVED',
      summary: { errored: 0, approved: 2, equal: 41, rejected: 1, unapproved: 0, queued: 0 },
    });
    expect(summary).toContain('Snapshot 1'); // the list stays
  });

  test.each([
    ['a build name too long for the space', 'n'.repeat(5_000)],
    ['a build name with an invisible character', 'shop-web\u200b sha:9fceb02'],
  ])('the event to paste is shown whole or not at all: %s', (_case, buildName) => {
    const v = record({ buildName, notes: { ...NO_NOTES, watchEnded: { at: T, afterMs: 72 * HOUR } } });
    const { summary } = renderVisual(v, visualRecordOutcome(v, opts));
    expect(summary).not.toContain('```text');
    expect(summary).toContain('use the build\'s webhook body with `"status": "APPROVED"` as the `payload` input');
  });
});

describe('the state block keeps the notes', () => {
  test('round trip', () => {
    const v = record({
      notes: { ...listed([diff(1), diff(2, { status: 'REJECTED' })], { UNAPPROVED: 2, REJECTED: 1 }), stuck: null, watchEnded: { at: T, afterMs: 1000 } },
    });
    expect(decodeState(encodeState({ kind: 'visual', build: v }))).toEqual({ kind: 'visual', build: v });
  });

  test('names that escaping blows up (each - < > is 6 bytes): the list is cut to fit the block, the verdicts kept', () => {
    const items = Array.from({ length: 100 }, (_, i) => diff(i, { snapshot: '<->'.repeat(66) + i, test: '-'.repeat(100), suite: '<'.repeat(100) }));
    const v = record({ status: 'QUEUED', notes: { ...listed(items, { UNAPPROVED: 100 }), stuck: stuck.stuck } });
    const text = encodeState({ kind: 'visual', build: v });
    expect(utf8Bytes(text)).toBeLessThanOrEqual(CHECK_OUTPUT_MAX_BYTES);
    expect(text.match(/-->/g)).toHaveLength(1);
    const back = decodeState(text);
    if (back?.kind !== 'visual') throw new Error('no state');
    expect(back.build.notes.stuck).toEqual(stuck.stuck);
    expect(back.build.notes.diffs!.items.length).toBeGreaterThan(0);
    expect(back.build.notes.diffs!.items.length).toBeLessThan(100);
    expect(back.build.notes.diffs!.items).toEqual(items.slice(0, back.build.notes.diffs!.items.length));
  });

  test('a state block from before (no notes) still reads', () => {
    const old =
      '<!-- sauce-labs-bridge:state\n{"v":1,"kind":"visual","build":{"id":"b","s":"EQUAL","c":{"errored":0,"approved":0,"equal":1,"rejected":0,"unapproved":0,"queued":0},"r":5}}\n-->';
    expect(decodeState(old)).toMatchObject({ kind: 'visual', build: { buildId: 'b', notes: NO_NOTES } });
  });
});

describe('merging: the notes are content', () => {
  test('the same status with a list added is a change; a later receipt with the list wins', () => {
    const webhook = record();
    const withList = record({ receivedAt: T + 1, notes: listed([diff(1)], { UNAPPROVED: 2 }) });
    expect(mergeVisual(webhook, [withList])).toEqual({ build: withList, changed: true });
    expect(mergeVisual(withList, [webhook])).toEqual({ build: withList, changed: false });
  });

  test('a stuck verdict never replaces a final state of the same build', () => {
    const final = record({ receivedAt: T });
    const verdict = record({ status: 'QUEUED', receivedAt: T + 5, notes: stuck });
    expect(mergeVisual(final, [verdict]).changed).toBe(false);
  });
});
