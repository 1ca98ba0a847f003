import { entryProbability, isSelected, textProbability, uniformDraw, type EntryCounts } from '../curation/balance';

describe('balancing maths (spec §3)', () => {
  test('p[e] = 1 below t, t / count at or above', () => {
    expect(entryProbability(19_999, 20_000)).toBe(1);
    expect(entryProbability(20_000, 20_000)).toBe(1);
    expect(entryProbability(80_000, 20_000)).toBe(0.25);
  });

  test('text probability is 1 − Π(1 − p[e])', () => {
    const counts: EntryCounts = new Map([[1, 40], [2, 80], [3, 5]]);
    expect(textProbability([1], counts, 20)).toBeCloseTo(0.5, 12);
    expect(textProbability([1, 2], counts, 20)).toBeCloseTo(1 - 0.5 * 0.75, 12);
    expect(textProbability([1, 3], counts, 20)).toBe(1); // a tail entry keeps the text
    expect(textProbability([], counts, 20)).toBe(0);
  });

  test('the draw is a fixed function of (seed, uuid, text) in [0, 1)', () => {
    const u = uniformDraw('0', 'abc', 'a dog');
    expect(u).toBe(uniformDraw('0', 'abc', 'a dog'));
    expect(u).not.toBe(uniformDraw('1', 'abc', 'a dog'));
    expect(u).not.toBe(uniformDraw('0', 'abc', 'a cat'));
    expect(u).toBeGreaterThanOrEqual(0);
    expect(u).toBeLessThan(1);
  });

  test('selection frequency matches the probability (200k draws, 5σ tolerance) and is nested in p', () => {
    const n = 200_000;
    for (const p of [0.01, 0.3, 0.75]) {
      let hits = 0;
      for (let i = 0; i < n; i++) if (isSelected('seed', `u${i}`, 'text', p)) hits++;
      const sigma = Math.sqrt(n * p * (1 - p));
      expect(Math.abs(hits - n * p)).toBeLessThan(5 * sigma);
    }
    for (let i = 0; i < 10_000; i++) {
      if (isSelected('s', `u${i}`, 't', 0.2)) expect(isSelected('s', `u${i}`, 't', 0.4)).toBe(true);
    }
  });
});
