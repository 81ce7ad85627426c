/**
 * action.yml is what GitHub reads: the runtime, the entry file, and the inputs and outputs a
 * workflow may use. actionlint checks the workflows that use it; this checks the file itself
 * against the code, so a renamed input or a new output cannot ship undeclared.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { INPUT_DEFAULTS } from '../../src/action/inputs.js';
import { DIST, ROOT, fixture, runAction } from './harness.js';

interface ActionMetadata {
  name?: unknown;
  description?: unknown;
  inputs?: Record<string, { description?: unknown; required?: unknown; default?: unknown }>;
  outputs?: Record<string, { description?: unknown }>;
  runs?: { using?: unknown; main?: unknown };
}

const metadata = parse(readFileSync(join(ROOT, 'action.yml'), 'utf8')) as ActionMetadata;

describe('action.yml', () => {
  it('runs the committed bundle on node24', () => {
    expect(metadata.runs).toEqual({ using: 'node24', main: 'dist/index.js' });
    expect(existsSync(DIST)).toBe(true);
    expect(typeof metadata.name).toBe('string');
    expect(typeof metadata.description).toBe('string');
  });

  it('declares exactly the inputs the code reads, each described, optional, with the default the code assumes', () => {
    const inputs = metadata.inputs ?? {};
    expect(Object.keys(inputs).sort()).toEqual(Object.keys(INPUT_DEFAULTS).sort());
    for (const [name, input] of Object.entries(inputs)) {
      expect({ name, described: typeof input.description === 'string' && input.description.length > 0 }).toEqual({ name, described: true });
      expect({ name, required: input.required }).toEqual({ name, required: false });
      // The token's default is an expression the runner expands; the code sees it as given.
      const expected = name === 'github-token' ? '${{ github.token }}' : INPUT_DEFAULTS[name];
      expect({ name, default: input.default }).toEqual({ name, default: expected });
    }
  });

  it('declares every output the bundle sets, and only those', async () => {
    // Nothing listens here: in dry-run the Action makes no request at all.
    const run = await runAction({
      apiUrl: 'http://127.0.0.1:9',
      clientPayload: fixture('job-vdc-passed.json'),
      inputs: { 'dry-run': 'true', 'github-token': '' },
    });
    expect(run.code).toBe(0);
    const declared = Object.keys(metadata.outputs ?? {}).sort();
    expect(Object.keys(run.outputs).sort()).toEqual(declared);
    for (const [name, output] of Object.entries(metadata.outputs ?? {})) {
      expect({ name, described: typeof output.description === 'string' && output.description.length > 0 }).toEqual({ name, described: true });
    }
  });
});
