import { createHmac } from 'node:crypto';
import { parseSignatureHeader, safeEqualText, signBody, verifySignature } from '../../../src/relay/http/signature.js';
import { signatureVectors } from '../support/common.js';
import * as proc from '../support/process.js';

const vectors = signatureVectors();

describe('signature vectors (pure)', () => {
  test('there are vectors', () => expect(vectors.length).toBeGreaterThanOrEqual(5));

  test.each(vectors.map((v) => [v.description, v] as const))('%s', (_d, v) => {
    const body = Buffer.from(v.body, 'utf8');
    expect(signBody(v.secret, body)).toBe(v['saucelabs-sign']);
    expect(verifySignature(body, v['saucelabs-sign'], [v.secret])).toBe(0);
    expect(verifySignature(body, v['saucelabs-sign'].toUpperCase(), [v.secret])).toBe(0);
    expect(verifySignature(body, `sha256=${v['saucelabs-sign']}`, [v.secret])).toBe(0);
    expect(verifySignature(body, `SHA256=${v['saucelabs-sign'].toUpperCase()}`, [v.secret])).toBe(0);
    expect(verifySignature(body, ` ${v['saucelabs-sign']} `, [v.secret])).toBe(0);
    // One byte more or less, or a re-serialised body, is a different message.
    expect(verifySignature(Buffer.concat([body, Buffer.from(' ')]), v['saucelabs-sign'], [v.secret])).toBe(-1);
    expect(verifySignature(body.subarray(1), v['saucelabs-sign'], [v.secret])).toBe(-1);
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(v.body)), 'utf8');
    if (!reserialised.equals(body)) expect(verifySignature(reserialised, v['saucelabs-sign'], [v.secret])).toBe(-1);
  });
});

describe('verifySignature', () => {
  const body = Buffer.from('{"id":"x"}');
  const sig = createHmac('sha256', 'new').update(body).digest('hex');

  test('reports which of several secrets matched (rotation)', () => {
    expect(verifySignature(body, sig, ['old', 'new'])).toBe(1);
    expect(verifySignature(body, sig, ['new', 'old'])).toBe(0);
    expect(verifySignature(body, sig, ['old', 'other'])).toBe(-1);
    expect(verifySignature(body, sig, [])).toBe(-1);
    expect(verifySignature(body, sig, ['', 'new'])).toBe(1);
  });

  test.each([
    ['missing', undefined],
    ['null', null],
    ['empty', ''],
    ['short', sig.slice(0, 63)],
    ['long', `${sig}0`],
    ['non-hex', `z${sig.slice(1)}`],
    ['other prefix', `sha1=${sig}`],
    ['prefix only', 'sha256='],
    ['base64 of the digest', Buffer.from(sig, 'hex').toString('base64')],
  ])('malformed header (%s) is rejected without throwing', (_n, header) => {
    expect(verifySignature(body, header as string | undefined, ['new'])).toBe(-1);
  });

  test('parseSignatureHeader', () => {
    expect(parseSignatureHeader(sig)?.length).toBe(32);
    expect(parseSignatureHeader(`sha256=${sig}`)?.toString('hex')).toBe(sig);
    expect(parseSignatureHeader('nope')).toBeNull();
  });

  test('signBody takes strings as UTF-8', () => {
    expect(signBody('k', 'ü')).toBe(signBody('k', Buffer.from('ü', 'utf8')));
  });

  test('safeEqualText', () => {
    expect(safeEqualText('abc', 'abc')).toBe(true);
    expect(safeEqualText('abc', 'abd')).toBe(false);
    expect(safeEqualText('abc', 'abcd')).toBe(false);
  });
});

describe('signature vectors as real HTTP requests to a relay process', () => {
  let relay: proc.RelayProcess;
  const secrets = [...new Set(vectors.map((v) => v.secret))];

  beforeAll(async () => {
    proc.ensureBuilt();
    relay = await proc.startRelayProcess({ env: { SAUCE_WEBHOOK_SECRET: secrets.join(','), RELAY_GROUP_WINDOW: '0' } });
  }, 60_000);
  afterAll(async () => {
    await relay?.kill('SIGTERM');
  });

  test.each(vectors.map((v) => [v.description, v] as const))('%s', async (_d, v) => {
    const url = `${relay.url}/webhook`;
    const body = Buffer.from(v.body, 'utf8');
    // Wrong first, so the good one below is not answered from the dedup memory.
    const flipped = (v['saucelabs-sign'].startsWith('0') ? '1' : '0') + v['saucelabs-sign'].slice(1);
    expect((await proc.postSigned(url, body, flipped)).status).toBe(401);
    expect((await proc.postSigned(url, body, null)).status).toBe(401);
    const good = await proc.postSigned(url, body, v['saucelabs-sign']);
    expect([200, 202, 422]).toContain(good.status);
    const again = await proc.postSigned(url, body, `sha256=${v['saucelabs-sign'].toUpperCase()}`);
    expect(again.status).not.toBe(401);
    if (good.status === 202) {
      const { id } = JSON.parse(good.body) as { id: string };
      expect(again.status).toBe(200);
      // The log names which secret matched, never the secret itself.
      const line = await relay.waitForLog((l) => l.msg === 'event stored' && l.id === id);
      expect(line.secretIndex).toBe(secrets.indexOf(v.secret));
    }
  });

  test('the secrets never appear in the logs', () => {
    for (const s of secrets) expect(relay.stdout()).not.toContain(s);
  });
});
