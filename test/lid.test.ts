import { LanguageIdentifier } from '../curation/lid';

describe('language identification (fastText lid.176.ftz, bundled)', () => {
  let lid: LanguageIdentifier;
  beforeAll(async () => {
    lid = await LanguageIdentifier.load();
  });

  test('identifies common alt-text languages', () => {
    expect(lid.lang('Photo of a red dog on the beach')).toBe('en');
    expect(lid.lang('Ein schwarzer Hund im Park')).toBe('de');
    expect(lid.lang('Une maison au bord de la mer')).toBe('fr');
    expect(lid.lang('猫の写真')).toBe('ja');
  });

  test('matches the values Python fastText gives with the same model', () => {
    // Reference: fasttext.load_model('lid.176.ftz').predict(text) in Python (fasttext-wheel 0.9.2).
    const g = lid.guess('Photo of a red dog');
    expect(g.lang).toBe('en');
    expect(g.prob).toBeCloseTo(0.6056996, 5);
    expect(lid.guess('Creative Commons License')).toMatchObject({ lang: 'ru' }); // the .ftz model's real answer
  });
});
