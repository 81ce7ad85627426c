/**
 * saucectl tags every job with `ci:repo:<owner/repo>`, `ci:ref:<branch>`, `ci:ssha:<short sha>`
 * (and `ci:url:`). They are the only place real-device jobs carry their commit.
 */
export interface SauceTags {
  readonly repo: string | null;
  readonly ref: string | null;
  readonly shortSha: string | null;
  readonly ciUrl: string | null;
}

const PREFIXES = {
  repo: 'ci:repo:',
  ref: 'ci:ref:',
  shortSha: 'ci:ssha:',
  ciUrl: 'ci:url:',
} as const;

export function parseSauceTags(tags: readonly string[]): SauceTags {
  const found: Record<keyof SauceTags, string | null> = { repo: null, ref: null, shortSha: null, ciUrl: null };
  for (const tag of tags) {
    for (const [key, prefix] of Object.entries(PREFIXES) as [keyof SauceTags, string][]) {
      if (found[key] === null && tag.startsWith(prefix)) {
        const value = tag.slice(prefix.length).trim();
        if (value !== '') found[key] = value;
      }
    }
  }
  return found;
}
