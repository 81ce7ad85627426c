import { redactUrl, urlProblem } from '../../../src/relay/config/url.js';

test.each([
  ['https://ghe.example.com/api/v3', null],
  ['http://127.0.0.1:9999', null],
  ['ghe.example.com/api/v3', 'not-a-url'],
  ['ftp://ghe.example.com', 'not-http'],
  ['https://user:ghp_secret@ghe.example.com/api/v3', 'credentials'],
  ['https://ghp_secret@ghe.example.com/api/v3', 'credentials'],
] as const)('urlProblem(%j) = %j', (url, problem) => expect(urlProblem(url)).toBe(problem));

test.each([
  ['https://user:ghp_secret@ghe.example.com/api/v3', 'https://***@ghe.example.com/api/v3'],
  ['https://ghp_secret@ghe.example.com/api/v3?x=1', 'https://***@ghe.example.com/api/v3?x=1'],
  ['http://a:b@[::1]:8080/p', 'http://***@[::1]:8080/p'],
  ['https://ghe.example.com/api/v3', 'https://ghe.example.com/api/v3'],
  // Not a URL, but it still may hold a token before an @.
  ['user:ghp_secret@ghe.example.com/api', '***@ghe.example.com/api'],
  ['nope', 'nope'],
])('redactUrl(%j) = %j', (url, shown) => {
  expect(redactUrl(url)).toBe(shown);
  expect(redactUrl(url)).not.toContain('ghp_secret');
});
