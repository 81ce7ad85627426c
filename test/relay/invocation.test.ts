import { describe, expect, it } from '@jest/globals';
import { selfCommand } from '../../src/relay/invocation.js';

describe('selfCommand', () => {
  it.each([
    ['/home/me/sauce-github-bridge/lib/relay/cli.js', 'node lib/relay/cli.js'],
    ['/srv/app/node_modules/.bin/sauce-relay', 'npx sauce-relay'],
    ['/root/.npm/_npx/3f2a/node_modules/.bin/sauce-relay', 'npx sauce-relay'],
    ['/srv/app/node_modules/sauce-relay/lib/relay/cli.js', 'npx sauce-relay'],
    ['/usr/local/bin/sauce-relay', 'sauce-relay'],
    ['C:\\Users\\me\\AppData\\Roaming\\npm\\node_modules\\sauce-relay\\lib\\relay\\cli.js', 'npx sauce-relay'],
  ])('%s → %s', (script, command) => {
    expect(selfCommand(script)).toBe(command);
  });
});
