import fc from 'fast-check';
import { Matcher, naiveMatch, spaceText } from '../curation/matcher';

describe('spacing (spec §2)', () => {
  test('wraps the text and each punctuation mark in spaces, turns \\t\\n\\r into spaces, nothing else', () => {
    expect(spaceText('I love New York.')).toBe(' I love New York .  ');
    expect(spaceText('a,b;c:d?e!f`g.h')).toBe(' a , b ; c : d ? e ! f ` g . h ');
    expect(spaceText('tab\there\nnew\rline')).toBe(' tab here new line ');
    expect(spaceText('two  spaces')).toBe(' two  spaces ');
    expect(spaceText("it's a dog-house (big)")).toBe(" it's a dog-house (big) ");
  });
});

describe('Matcher', () => {
  const entries = ['dog', 'New York', 'York', 'New', 'dog house', 'St. Louis', '0', '99', 'rock-n-roll', "O'Neil", 'Dog', 'a b c d e f'];
  const m = new Matcher(entries);
  const ids = (...names: string[]) => names.map((n) => entries.indexOf(n)).sort((a, b) => a - b);

  test.each([
    ['I love New York.', ids('New York', 'York', 'New')],
    ['dogs', []],
    ['DOG', []],
    ['Dog', ids('Dog')],
    ['my dog, my dog house', ids('dog', 'dog house')],
    ['St. Louis', []], // an entry holding a wrapped punctuation mark cannot match
    ['Route 99!', ids('99')],
    ['0', ids('0')],
    ['rock-n-roll forever', ids('rock-n-roll')],
    ["O'Neil's", []],
    ["Mr O'Neil", ids("O'Neil")],
    ['dog\tbed', ids('dog')],
    ['a b c d e f', ids('a b c d e f')],
    ['a b c d e', []],
    ['', []],
  ])('%j', (text, expected) => {
    expect(m.match(text)).toEqual(expected);
    expect(naiveMatch(entries, text)).toEqual(expected);
  });

  test('ids are ascending and unique even when an entry occurs twice', () => {
    expect(m.match('dog and dog and New York New York')).toEqual(ids('dog', 'New York', 'York', 'New'));
  });

  test('duplicate entries, empty entries and entries with outer spaces follow the definition', () => {
    const odd = ['x', 'x', '', ' y', 'y ', 'z\tw', ','];
    const mm = new Matcher(odd);
    for (const t of ['x', 'a  y', 'y  b', 'x,', 'z w', 'q ,r', 'no']) expect(mm.match(t)).toEqual(naiveMatch(odd, t));
  });

  test('property: equals the naive definition on random entries and texts', () => {
    const alphabet = fc.constantFrom('a', 'b', 'A', ' ', ' ', ',', '.', '!', '-', "'", '\t', '\n', '1', 'é');
    const word = fc.string({ unit: alphabet, minLength: 0, maxLength: 6 });
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 40 }), fc.array(fc.string({ unit: alphabet, maxLength: 30 }), { maxLength: 20 }), (ents, texts) => {
        const matcher = new Matcher(ents);
        const colliding = new Matcher(ents, 0x3); // 16 possible keys: almost everything collides
        for (const t of texts) {
          expect(matcher.match(t)).toEqual(naiveMatch(ents, t));
          expect(colliding.match(t)).toEqual(naiveMatch(ents, t));
        }
      }),
      { numRuns: 500 },
    );
  });
});
