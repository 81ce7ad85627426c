import { envMessages, fileMessages, formatPath } from '../../../src/relay/config/errors.js';

const doc = { routes: [{ name: 'web', secrets: ['x'] }, { secrets: [] }], github: { token: 't' } };

test.each([
  [['routes', 0, 'secrets', 0], 'routes[0:web].secrets[0]'],
  [['routes', 1, 'secrets'], 'routes[1].secrets'],
  [['github', 'token'], 'github.token'],
  [['routes', 7, 'name'], 'routes[7].name'],
  [[], '(root)'],
] as const)('formatPath(%j) = %s', (path, text) => expect(formatPath(path, doc)).toBe(text));

test('file messages name the file and the field; env messages name the variable', () => {
  expect(fileMessages([{ path: ['routes', 0, 'repo'], message: 'm' }], 'relay.yaml', doc)).toEqual(['relay.yaml: routes[0:web].repo: m']);
  expect(fileMessages([{ path: [], message: 'unknown field(s) portt' }], 'relay.yaml', doc)).toEqual(['relay.yaml: unknown field(s) portt']);
  expect(envMessages([{ path: ['github', 'api_url'], message: 'm' }])).toEqual(['GITHUB_API_URL: m']);
});
