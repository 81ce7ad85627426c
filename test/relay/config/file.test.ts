import { type DocIssue, expandEnv, expandString, parseFileText } from '../../../src/relay/config/file.js';

const env = { SAUCE_SECRET: 's3cr3t', EMPTY: '', HOST: 'ghe.example.com' };

function expand(value: string): { value: string; issues: string[] } {
  const issues: DocIssue[] = [];
  const out = expandString(value, env, ['x'], issues);
  return { value: out, issues: issues.map((i) => i.message) };
}

describe('${NAME} expansion', () => {
  test.each([
    ['${SAUCE_SECRET}', 's3cr3t'],
    ['https://${HOST}/api/v3', 'https://ghe.example.com/api/v3'],
    ['no variables', 'no variables'],
    // A "$" not followed by a name or "{" is plain text.
    ['pa$5word', 'pa$5word'],
    ['costs 5$', 'costs 5$'],
    ['$$', '$$'],
  ])('%j → %j', (text, expanded) => expect(expand(text)).toEqual({ value: expanded, issues: [] }));

  test.each([
    ['${NOPE}', /^environment variable NOPE is not set: export it or write the value in the file$/],
    ['${EMPTY}', /^environment variable EMPTY is set but empty/],
    // Without braces it used to stay literal text: a secret nobody knows.
    ['$SAUCE_SECRET', /^\$SAUCE_SECRET is not expanded without braces: write \$\{SAUCE_SECRET\} to read an environment variable/],
    ['prefix-$SAUCE_SECRET', /write \$\{SAUCE_SECRET\}/],
    ['$$SAUCE_SECRET', /write \$\{SAUCE_SECRET\}/],
    ['${1BAD}', /is not a variable reference: write \$\{NAME\}/],
    ['${UNCLOSED', /"\$\{" without a closing "\}" \(character 1\)/],
  ])('%j is refused: %s', (text, message) => {
    const r = expand(text);
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]).toMatch(message);
  });

  test('a $name in a literal secret is not repeated in the message', () => {
    const r = expand('Xy7$abcDEF');
    expect(r.issues[0]).toMatch(/^a "\$" followed by a letter \(character 4\) is not expanded without braces: write \$\{NAME\}/);
    expect(r.issues[0]).not.toContain('abcDEF');
  });

  test('every string of the document, with the path of each problem', () => {
    const issues: DocIssue[] = [];
    const doc = expandEnv({ port: 1, routes: [{ name: 'a', secrets: ['${SAUCE_SECRET}', '${NOPE}'] }] }, env, issues);
    expect(doc).toEqual({ port: 1, routes: [{ name: 'a', secrets: ['s3cr3t', ''] }] });
    expect(issues).toEqual([{ path: ['routes', 0, 'secrets', 1], message: expect.stringMatching(/NOPE is not set/) }]);
  });
});

describe('the file text', () => {
  test.each([
    ['port: 1\nroutes: []', { ok: true, doc: { port: 1, routes: [] } }],
    ['{"routes": []}', { ok: true, doc: { routes: [] } }],
    ['routes: [unclosed', { ok: false, error: expect.stringMatching(/^not valid YAML or JSON: /) }],
    ['- a\n- b', { ok: false, error: 'expected a mapping with a routes: list at the top level' }],
    ['', { ok: false, error: 'expected a mapping with a routes: list at the top level' }],
  ])('%j', (text, result) => expect(parseFileText(text)).toEqual(result));
});
