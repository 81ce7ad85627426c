import { bearerToken, headerValue } from '../../../src/relay/http/headers.js';

describe('headerValue', () => {
  test.each([
    [{ 'x-a': 'one' }, 'one'],
    [{ 'x-a': ['first', 'second'] }, 'first'],
    [{ 'x-a': [] }, undefined],
    [{ 'x-b': 'other' }, undefined],
    [{ 'x-a': undefined }, undefined],
  ])('%j → %j', (headers, expected) => {
    expect(headerValue(headers, 'x-a')).toBe(expected);
  });
});

describe('bearerToken', () => {
  test.each([
    ['Bearer abc123', 'abc123'],
    ['bearer\tabc123  ', 'abc123'],
    ['BEARER abc', 'abc'],
    ['Bearer', undefined],
    ['Bearer a b', undefined],
    ['Basic abc', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%j → %j', (header, expected) => {
    expect(bearerToken(header)).toBe(expected);
  });
});
