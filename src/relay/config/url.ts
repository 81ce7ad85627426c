/** Configured URLs (GitHub's and Sauce's API, the database): what makes one acceptable, and how one is shown. */

/** Why a configured URL is refused. */
export type UrlProblem =
  /** Not an absolute URL. */
  | 'not-a-url'
  /** Not http: or https:. */
  | 'not-http'
  /** `https://user:token@host`: Node's fetch refuses such URLs, and they leak the token wherever the URL is shown. */
  | 'credentials';

export function urlProblem(value: string): UrlProblem | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'not-a-url';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'not-http';
  if (url.username !== '' || url.password !== '') return 'credentials';
  return null;
}

/**
 * The URL with its user part (`user:token@`) replaced by `***@`, for every place a configured URL
 * is printed or logged. Text that is not a URL is shown only up to an `@`, in case it held one.
 */
export function redactUrl(value: string): string {
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {
    url = null;
  }
  if (url && (url.protocol === 'https:' || url.protocol === 'http:')) {
    if (url.username === '' && url.password === '') return value;
    url.username = '';
    url.password = '';
    return url.href.replace('//', '//***@');
  }
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^/@]*@/i, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
}

/** Why a `database_url` is refused. */
export type DatabaseUrlProblem =
  /** Not an absolute URL. */
  | 'not-a-url'
  /** Not postgres: or postgresql:. */
  | 'not-postgres'
  /** No host to connect to. */
  | 'no-host';

export function databaseUrlProblem(value: string): DatabaseUrlProblem | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'not-a-url';
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return 'not-postgres';
  // postgres:///relay?host=/var/run/postgresql names a Unix socket instead.
  if (url.hostname === '' && !url.searchParams.get('host')) return 'no-host';
  return null;
}

/**
 * A database URL as it may be printed or logged: scheme, user, host, port and database only. The
 * password goes, and so does the query, which may carry one too (`?password=`, `sslpassword=`).
 */
export function shownDatabaseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return '(not a URL)';
  }
  return `${url.protocol}//${url.username ? `${url.username}@` : ''}${url.host}${url.pathname}`;
}
