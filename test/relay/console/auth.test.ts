import {
  bearer,
  consoleKeys,
  crossOrigin,
  csrfToken,
  csrfValid,
  issueSession,
  readSession,
  sessionCookie,
  sessionCookieValue,
  tokenMatches,
} from '../../../src/relay/console/auth.js';

const TOKEN = 'console-admin-token-0123456789abcdef';
const keys = consoleKeys(TOKEN);
const TTL = 3_600_000;
const T0 = 1_756_800_000_000;
const random = Buffer.alloc(18, 7);

test('a token shorter than 32 characters cannot make keys', () => {
  expect(() => consoleKeys('x'.repeat(31))).toThrow(/32/);
});

test.each([
  [TOKEN, true],
  [`${TOKEN}x`, false],
  [TOKEN.slice(0, -1), false],
  ['', false],
])('token %j matches: %s', (given, expected) => {
  expect(tokenMatches(keys, given)).toBe(expected);
});

test.each([
  [undefined, 'none'],
  [`Bearer ${TOKEN}`, 'ok'],
  [`bearer   ${TOKEN}  `, 'ok'],
  [`Bearer ${TOKEN}x`, 'wrong'],
  [TOKEN, 'wrong'],
  ['Basic abc', 'wrong'],
  ['', 'wrong'],
])('Authorization %j → %s', (header, expected) => {
  expect(bearer(keys, header)).toBe(expected);
});

describe('sessions are signed cookies that expire', () => {
  const { session, value } = issueSession(keys, T0, TTL, random);

  test('read back until it expires', () => {
    expect(readSession(keys, value, T0, TTL)).toEqual(session);
    expect(readSession(keys, value, T0 + TTL - 1, TTL)).toEqual(session);
    expect(readSession(keys, value, T0 + TTL, TTL)).toBeNull();
  });

  const [issued, id, mac] = value.split('.') as [string, string, string];
  const flip = (s: string) => (s[0] === 'A' ? `B${s.slice(1)}` : `A${s.slice(1)}`);
  test.each([
    ['no cookie', undefined],
    ['empty', ''],
    ['another id', `${issued}.${flip(id)}.${mac}`],
    ['another time (an extended session)', `${(T0 + TTL).toString(36)}.${id}.${mac}`],
    ['another signature', `${issued}.${id}.${flip(mac)}`],
    ['signed with another token', issueSession(consoleKeys(`${TOKEN}-old`), T0, TTL, random).value],
    ['malformed', `${issued}.${id}`],
    ['issued far in the future', issueSession(keys, T0 + 3_600_000, TTL, random).value],
  ])('refused: %s', (_name, cookie) => {
    expect(readSession(keys, cookie, T0, TTL)).toBeNull();
  });

  test('refused once revoked (signed out)', () => {
    expect(readSession(keys, value, T0, TTL, new Set([session.id]))).toBeNull();
  });

  test('the CSRF token belongs to its session', () => {
    const other = issueSession(keys, T0, TTL, Buffer.alloc(18, 9)).session;
    expect(csrfValid(keys, session, csrfToken(keys, session))).toBe(true);
    expect(csrfValid(keys, session, csrfToken(keys, other))).toBe(false);
    expect(csrfValid(keys, session, undefined)).toBe(false);
    expect(csrfValid(keys, session, '')).toBe(false);
  });

  test('the cookie: HttpOnly, SameSite=Strict, Path=/, Secure behind HTTPS', () => {
    expect(sessionCookie(value, TTL, false)).toBe(`sauce_relay_console=${value}; Max-Age=3600; Path=/; HttpOnly; SameSite=Strict`);
    expect(sessionCookie(value, TTL, true)).toMatch(/; Secure/);
    expect(sessionCookieValue({ cookie: `a=b; sauce_relay_console=${value}; c=d` })).toBe(value);
  });
});

test.each([
  [{ origin: 'http://relay.test:8080', host: 'relay.test:8080' }, null],
  [{ origin: 'https://relay.example.com', host: 'relay.example.com', 'sec-fetch-site': 'same-origin' }, null],
  [{ host: 'relay.test' }, 'no_origin'],
  [{ origin: 'null', host: 'relay.test' }, 'no_origin'],
  [{ origin: 'https://evil.example', host: 'relay.test' }, 'other_origin'],
  [{ origin: 'http://relay.test:8081', host: 'relay.test:8080' }, 'other_origin'],
  [{ origin: 'not a url', host: 'relay.test' }, 'other_origin'],
  [{ origin: 'http://relay.test', host: 'relay.test', 'sec-fetch-site': 'same-site' }, 'cross_site_fetch'],
  [{ origin: 'http://relay.test', host: 'relay.test', 'sec-fetch-site': 'cross-site' }, 'cross_site_fetch'],
])('origin check %j → %s', (headers, expected) => {
  expect(crossOrigin(headers)).toBe(expected);
});
