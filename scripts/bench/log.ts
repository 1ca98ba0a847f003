/** The benches' smallest helpers, in a module of their own so that a bench child can use them without loading the bench command. */

export function progress(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

export const nowS = (): number => Number(process.hrtime.bigint()) / 1e9;
export const int = (n: number): string => Math.round(n).toLocaleString('en-US');
