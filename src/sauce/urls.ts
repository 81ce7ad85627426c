/**
 * Sauce Labs hosts. Job events carry no data center, so job links need a configured region;
 * every link we render must point at a Sauce Labs host, never at whatever a payload says.
 */
export const REGIONS = ['us-west-1', 'eu-central-1', 'us-east-4'] as const;
export type Region = (typeof REGIONS)[number];
export const DEFAULT_REGION: Region = 'us-west-1';

const APP_ORIGINS: Record<Region, string> = {
  'us-west-1': 'https://app.saucelabs.com',
  'eu-central-1': 'https://app.eu-central-1.saucelabs.com',
  'us-east-4': 'https://app.us-east-4.saucelabs.com',
};

export function isRegion(value: string): value is Region {
  return (REGIONS as readonly string[]).includes(value);
}

export function appOrigin(region: Region): string {
  return APP_ORIGINS[region];
}

/** The job page for a vdc or rdc job id. The id is path-encoded, so it can never leave the host. */
export function jobUrl(region: Region, jobId: string): string {
  return `${APP_ORIGINS[region]}/tests/${encodeURIComponent(jobId)}`;
}

/** True only for https URLs on saucelabs.com or one of its subdomains, with no credentials. */
export function isSauceUrl(candidate: string | null | undefined): candidate is string {
  if (!candidate) return false;
  let url: URL;
  try {
    url = new URL(candidate);
  } catch {
    return false;
  }
  if (url.protocol !== 'https:' || url.username !== '' || url.password !== '' || url.port !== '') return false;
  const host = url.hostname.toLowerCase();
  return host === 'saucelabs.com' || host.endsWith('.saucelabs.com');
}

/** The link to show for a URL from a payload: itself when it is a Sauce host, otherwise null. */
export function safeSauceUrl(candidate: string | null | undefined): string | null {
  return isSauceUrl(candidate) ? new URL(candidate).href : null;
}
