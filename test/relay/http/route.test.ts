import { parseSauceEvent, type SauceEvent } from '../../../src/sauce/event.js';
import { filterReason, isAllowed, isFailure, matchesPattern, routeEvent } from '../../../src/relay/http/route.js';
import { route, sauceFixture, sauceFixtureNames } from '../support/common.js';

function event(name: string, patch: Record<string, unknown> = {}): SauceEvent {
  const r = parseSauceEvent({ ...JSON.parse(sauceFixture(name).toString('utf8')), ...patch });
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.event;
}

const TEAM = 'b2d4f6a8c0e24b6d8f0a2c4e6a8c0e2f';
const filters = route().filters;

describe('routeEvent', () => {
  test('a fixed repo takes every fixture', () => {
    for (const name of sauceFixtureNames()) expect(routeEvent(event(name), route())).toEqual({ ok: true, repo: 'acme/web' });
  });

  test('repo from the ci:repo: tag, only inside the allowlist', () => {
    const tagged = event('job-rdc-failed-tags.json'); // ci:repo:acme/shop
    expect(routeEvent(tagged, route({ repo: null, repoFromTags: true, allow: ['acme'] }))).toEqual({ ok: true, repo: 'acme/shop' });
    expect(routeEvent(tagged, route({ repo: null, repoFromTags: true, allow: ['ACME/Shop'] }))).toEqual({ ok: true, repo: 'acme/shop' });
    const outside = routeEvent(tagged, route({ repo: null, repoFromTags: true, allow: ['other', 'acme/web'] }));
    expect(outside).toEqual({ ok: false, code: 'not_allowed', reason: expect.stringMatching(/outside the route allowlist/) });
    // A fixed repo is a fallback for events with no tag, never a way around the allowlist.
    const fallback = route({ repo: 'acme/web', repoFromTags: true, allow: ['other'] });
    expect(routeEvent(event('job-vdc-passed.json'), fallback)).toEqual({ ok: true, repo: 'acme/web' });
    expect(routeEvent(tagged, fallback).ok).toBe(false);
    expect(routeEvent(event('visual-approved.json'), route({ repo: null, repoFromTags: true, allow: ['acme'] }))).toEqual({
      ok: false,
      code: 'no_route',
      reason: expect.stringMatching(/^no route/),
    });
  });

  test.each([
    'ci:repo:evil/repo',
    'ci:repo:acme/shop/../../evil/x',
    'ci:repo:acmex/shop',
    'ci:repo:acme',
    'ci:repo:acme/',
    'ci:repo:acme/..',
    'ci:repo:https://github.com/acme/shop',
    'ci:repo:acme /shop',
  ])('a hostile tag (%s) never routes outside the allowlist', (tag) => {
    const e = event('job-rdc-failed-tags.json', { tags: [tag] });
    const d = routeEvent(e, route({ repo: null, repoFromTags: true, allow: ['acme'] }));
    if (d.ok) {
      expect(isAllowed(d.repo, ['acme'])).toBe(true);
      expect(d.repo.toLowerCase().startsWith('acme/')).toBe(true);
    }
  });

  test('only the first ci:repo: tag counts', () => {
    const e = event('job-rdc-failed-tags.json', { tags: ['ci:repo:acme/shop', 'ci:repo:evil/x'] });
    expect(routeEvent(e, route({ repo: null, repoFromTags: true, allow: ['acme'] }))).toEqual({ ok: true, repo: 'acme/shop' });
  });
});

describe('filters', () => {
  test('families', () => {
    const f = { ...filters, families: ['visual' as const] };
    expect(filterReason(event('visual-approved.json'), f)).toBeNull();
    expect(filterReason(event('job-vdc-passed.json'), f)).toMatch(/family vdc is not in filters.families/);
    expect(filterReason(event('job-rdc-failed-tags.json'), { ...filters, families: ['rdc'] })).toBeNull();
  });

  test('failed_only', () => {
    const f = { ...filters, failedOnly: true };
    expect(filterReason(event('job-vdc-passed.json'), f)).toMatch(/failed_only/);
    expect(filterReason(event('job-vdc-complete-passed-null.json'), f)).toMatch(/failed_only/);
    expect(filterReason(event('job-vdc-failed-boolean.json'), f)).toBeNull();
    expect(filterReason(event('job-vdc-errored.json'), f)).toBeNull();
    expect(filterReason(event('visual-rejected.json'), f)).toBeNull();
    expect(filterReason(event('visual-unapproved.json'), f)).toBeNull();
    expect(filterReason(event('visual-equal-eu-no-branch.json'), f)).toMatch(/failed_only/);
    expect(isFailure(event('job-vdc-passed.json', { status: 'COMPLETE', passed: false }))).toBe(true);
  });

  test('team_id, org_id, owner, build, project', () => {
    const job = event('job-rdc-failed-tags.json'); // owner ci-bot, build android-nightly-881
    expect(filterReason(job, { ...filters, teamId: [TEAM] })).toBeNull();
    expect(filterReason(job, { ...filters, teamId: ['other'] })).toMatch(/filters.team_id/);
    expect(filterReason(job, { ...filters, orgId: ['7a9e2b4c6d8f4a1b9c3e5d7f9a1b3c5d'] })).toBeNull();
    expect(filterReason(job, { ...filters, owner: ['someone', 'ci-bot'] })).toBeNull();
    expect(filterReason(job, { ...filters, owner: ['someone'] })).toMatch(/filters.owner/);
    expect(filterReason(job, { ...filters, build: ['android-*'] })).toBeNull();
    expect(filterReason(job, { ...filters, build: ['ios-*'] })).toMatch(/filters.build/);
    expect(filterReason(job, { ...filters, project: ['shop-web'] })).toMatch(/filters.project/);
    const visual = event('visual-unapproved.json'); // project shop-web, team_ids [uuid]
    expect(filterReason(visual, { ...filters, project: ['shop-web'] })).toBeNull();
    expect(filterReason(visual, { ...filters, teamId: ['b2d4f6a8-c0e2-4b6d-8f0a-2c4e6a8c0e2f'] })).toBeNull();
    expect(filterReason(visual, { ...filters, build: ['shop-web sha:*'] })).toBeNull();
    expect(filterReason(event('visual-equal-eu-no-branch.json'), { ...filters, project: ['*'] })).toMatch(/filters.project/);
  });

  test('filtered events are not routed', () => {
    const d = routeEvent(event('job-vdc-passed.json'), route({ filters: { ...filters, failedOnly: true } }));
    expect(d).toEqual({ ok: false, code: 'filtered', reason: expect.stringMatching(/failed_only/) });
  });
});

describe('each refusal carries its code', () => {
  const tagged = route({ repo: null, repoFromTags: true, allow: ['acme'] });
  test.each([
    ['a filter does not match', event('job-vdc-passed.json'), route({ filters: { ...filters, families: ['rdc'] } }), 'filtered'],
    ['failed_only', event('visual-approved.json'), route({ filters: { ...filters, failedOnly: true } }), 'filtered'],
    ['a tag that is not owner/repo', event('job-rdc-failed-tags.json', { tags: ['ci:repo:acme'] }), tagged, 'bad_tag'],
    ['a tag outside the allowlist', event('job-rdc-failed-tags.json', { tags: ['ci:repo:evil/x'] }), tagged, 'not_allowed'],
    ['no tag and no fixed repo', event('job-vdc-passed.json'), tagged, 'no_route'],
    ['a route without a repo', event('job-vdc-passed.json'), route({ repo: null }), 'no_route'],
  ] as const)('%s → %s', (_what, e, r, code) => {
    const d = routeEvent(e, r);
    expect(d.ok ? null : d.code).toBe(code);
  });
});

test('matchesPattern treats only * as special', () => {
  expect(matchesPattern('shop-*', 'shop-web #1')).toBe(true);
  expect(matchesPattern('a.c', 'abc')).toBe(false);
  expect(matchesPattern('*', '')).toBe(true);
  expect(matchesPattern('(x)+', '(x)+')).toBe(true);
  expect(matchesPattern('a*c', 'a\nc')).toBe(true);
});
