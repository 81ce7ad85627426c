import { BodyBudget, BodyBuffer, FIRST_CHUNKED_CAPACITY, nextCapacity } from '../../../src/relay/http/body.js';

const KiB = 1024;

describe('nextCapacity (no declared length)', () => {
  test.each([
    // current, needed, cap → capacity
    [0, 1, 256 * KiB, FIRST_CHUNKED_CAPACITY],
    [0, FIRST_CHUNKED_CAPACITY + 1, 256 * KiB, 2 * FIRST_CHUNKED_CAPACITY],
    [16 * KiB, 17 * KiB, 256 * KiB, 32 * KiB],
    [32 * KiB, 100 * KiB, 256 * KiB, 128 * KiB],
    [128 * KiB, 200 * KiB, 256 * KiB, 256 * KiB],
    [128 * KiB, 200 * KiB, 150 * KiB, 150 * KiB],
    [0, 10, 100, 100],
  ])('current %d, needed %d, cap %d → %d', (current, needed, cap, expected) => {
    expect(nextCapacity(current, needed, cap)).toBe(expected);
  });
});

describe('BodyBuffer', () => {
  const chunk = (n: number, fill = 0x61) => Buffer.alloc(n, fill);

  test('a declared length is taken whole before reading, and given back on release', () => {
    const budget = new BodyBudget(100 * KiB);
    const body = new BodyBuffer(budget, 64 * KiB, 40 * KiB);
    expect(body.open()).toBeNull();
    expect(budget.held()).toBe(40 * KiB);
    expect(body.append(chunk(10 * KiB))).toBeNull();
    expect(body.append(chunk(30 * KiB, 0x62))).toBeNull();
    expect(budget.held()).toBe(40 * KiB);
    expect(body.bytes()).toEqual(Buffer.concat([chunk(10 * KiB), chunk(30 * KiB, 0x62)]));
    body.release();
    body.release();
    expect(budget.held()).toBe(0);
    expect(body.bytes().length).toBe(0);
  });

  test('a declared length over the cap → too_large, nothing taken', () => {
    const budget = new BodyBudget(100 * KiB);
    expect(new BodyBuffer(budget, 64 * KiB, 64 * KiB + 1).open()).toBe('too_large');
    expect(budget.held()).toBe(0);
  });

  test('a declared length the budget cannot hold → over_budget, nothing taken; another fits once it is given back', () => {
    const budget = new BodyBudget(100 * KiB);
    const first = new BodyBuffer(budget, 64 * KiB, 60 * KiB);
    expect(first.open()).toBeNull();
    const second = new BodyBuffer(budget, 64 * KiB, 60 * KiB);
    expect(second.open()).toBe('over_budget');
    expect(budget.held()).toBe(60 * KiB);
    first.release();
    expect(new BodyBuffer(budget, 64 * KiB, 60 * KiB).open()).toBeNull();
    expect(budget.held()).toBe(60 * KiB);
  });

  test('no declared length: taken as it grows, by doubling', () => {
    const budget = new BodyBudget(1024 * KiB);
    const body = new BodyBuffer(budget, 256 * KiB, null);
    expect(body.open()).toBeNull();
    expect(budget.held()).toBe(0);
    expect(body.append(chunk(1 * KiB))).toBeNull();
    expect(budget.held()).toBe(FIRST_CHUNKED_CAPACITY);
    expect(body.append(chunk(20 * KiB))).toBeNull();
    expect(budget.held()).toBe(32 * KiB);
    expect(body.append(chunk(100 * KiB))).toBeNull();
    expect(budget.held()).toBe(128 * KiB);
    expect(body.bytes().length).toBe(121 * KiB);
    body.release();
    expect(budget.held()).toBe(0);
  });

  test('no declared length: growth the budget cannot hold → over_budget, the body dropped and given back', () => {
    // 40 KiB budget: 16 KiB, then 32 KiB needs 16 + 32 = 48 KiB while copying.
    const budget = new BodyBudget(40 * KiB);
    const body = new BodyBuffer(budget, 256 * KiB, null);
    expect(body.append(chunk(10 * KiB))).toBeNull();
    expect(body.append(chunk(10 * KiB))).toBe('over_budget');
    expect(budget.held()).toBe(0);
    expect(body.bytes().length).toBe(0);
    expect(body.append(chunk(1))).toBe('over_budget');
    expect(budget.held()).toBe(0);
  });

  test('bytes read past the cap → too_large, the body dropped and given back', () => {
    const budget = new BodyBudget(1024 * KiB);
    const body = new BodyBuffer(budget, 20 * KiB, null);
    expect(body.append(chunk(20 * KiB))).toBeNull();
    expect(body.append(chunk(1))).toBe('too_large');
    expect(budget.held()).toBe(0);
    expect(body.append(chunk(1))).toBe('too_large');
  });

  test('an empty declared body takes nothing', () => {
    const budget = new BodyBudget(1);
    const body = new BodyBuffer(budget, 64, 0);
    expect(body.open()).toBeNull();
    expect(body.bytes().length).toBe(0);
    expect(budget.held()).toBe(0);
  });
});
