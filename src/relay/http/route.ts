/**
 * Pure routing: a parsed Sauce event and a route → the target repository, or the reason to drop it.
 * A payload can never choose a repository outside the route's allowlist (its `allow` entries plus
 * its fixed `repo`).
 */
import { familyOf, type SauceEvent } from '../../sauce/event.js';
import { isRepoName, type RouteConfig, type RouteFilters } from '../config/index.js';

/**
 * Why an event is not relayed, as a code for metrics and logs (the reason text is for people):
 * - `filtered`: a route filter (families, failed_only, team_id, …) does not match the event
 * - `bad_tag`: the `ci:repo:` tag is not `owner/repo`
 * - `not_allowed`: the `ci:repo:` tag names a repository outside the route's allowlist
 * - `no_route`: no repository for the event (no tag, and the route has no fixed repo)
 */
export type RouteRefusal = 'filtered' | 'bad_tag' | 'not_allowed' | 'no_route';

export type RouteDecision = { readonly ok: true; readonly repo: string } | { readonly ok: false; readonly code: RouteRefusal; readonly reason: string };

/** `*` matches any run of characters; everything else literally; case-sensitive ids, exact. */
export function matchesPattern(pattern: string, value: string): boolean {
  if (!pattern.includes('*')) return pattern === value;
  const parts = pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`, 's').test(value);
}

function matchesAny(patterns: readonly string[], values: readonly (string | null)[]): boolean {
  return values.some((v) => v !== null && patterns.some((p) => matchesPattern(p, v)));
}

/** Failed jobs (FAILED, ERRORED, passed=false); Visual builds ERRORED, REJECTED or UNAPPROVED. */
export function isFailure(event: SauceEvent): boolean {
  if (event.kind === 'job') return event.status === 'FAILED' || event.status === 'ERRORED' || event.passed === false;
  return event.status === 'ERRORED' || event.status === 'REJECTED' || event.status === 'UNAPPROVED';
}

/** The event's values for each match filter (Visual: user_id for owner, build_name for build). */
function fieldValues(event: SauceEvent) {
  if (event.kind === 'job') {
    return {
      teamId: [event.teamId],
      orgId: [event.orgId],
      owner: [event.owner],
      build: [event.build],
      project: [] as (string | null)[],
    };
  }
  return {
    teamId: [...event.teamIds],
    orgId: [event.orgId],
    owner: [event.userId],
    build: [event.buildName],
    project: [event.project],
  };
}

const FILTER_FIELDS = [
  ['teamId', 'team_id'],
  ['orgId', 'org_id'],
  ['owner', 'owner'],
  ['build', 'build'],
  ['project', 'project'],
] as const;

/** Null when the event passes every filter, else why it does not. */
export function filterReason(event: SauceEvent, filters: RouteFilters): string | null {
  const family = familyOf(event);
  if (filters.families !== null && !filters.families.includes(family)) {
    return `family ${family} is not in filters.families (${filters.families.join(', ')})`;
  }
  if (filters.failedOnly && !isFailure(event)) return 'filters.failed_only: the event is not a failure';
  const values = fieldValues(event);
  for (const [key, name] of FILTER_FIELDS) {
    const patterns = filters[key];
    if (patterns !== null && !matchesAny(patterns, values[key])) return `filters.${name} does not match the event`;
  }
  return null;
}

/** True when `repo` (owner/repo) is in the allowlist, by owner or by full name, case-insensitively. */
export function isAllowed(repo: string, allow: readonly string[]): boolean {
  if (!isRepoName(repo)) return false;
  const lower = repo.toLowerCase();
  const owner = lower.split('/')[0];
  return allow.some((entry) => {
    const e = entry.toLowerCase();
    return e.includes('/') ? e === lower : e === owner;
  });
}

export function routeEvent(event: SauceEvent, route: RouteConfig): RouteDecision {
  const filtered = filterReason(event, route.filters);
  if (filtered !== null) return { ok: false, code: 'filtered', reason: filtered };
  const allow = route.repo ? [...route.allow, route.repo] : route.allow;
  if (route.repoFromTags) {
    const tagged = event.kind === 'job' ? event.sauceTags.repo : null;
    if (tagged !== null) {
      if (!isRepoName(tagged)) return { ok: false, code: 'bad_tag', reason: 'the ci:repo: tag is not owner/repo' };
      if (!isAllowed(tagged, allow)) return { ok: false, code: 'not_allowed', reason: 'the ci:repo: tag names a repository outside the route allowlist' };
      return { ok: true, repo: tagged };
    }
    if (route.repo === null) return { ok: false, code: 'no_route', reason: 'no route: the event has no ci:repo: tag and the route has no repo' };
  }
  if (route.repo === null) return { ok: false, code: 'no_route', reason: 'no route: the route has no repo' };
  return { ok: true, repo: route.repo };
}
