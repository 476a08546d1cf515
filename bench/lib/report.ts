// Reporting for benchmarks: one JSON line per figure on stdout (next to its baseline from the same
// run), progress on stderr, and the small statistics the suites need (median, percentiles).

/** A measured figure and the baseline it is compared with. */
export interface Figure {
  suite: string;
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  /** Context that is not a figure (sizes, run count, spread). */
  detail?: Record<string, unknown>;
}

/** Prints a figure as one JSON line on stdout. */
export function emit(f: Figure): void {
  process.stdout.write(`${JSON.stringify(f)}\n`);
}

/** Progress line on stderr (never mixed with figures). */
export function note(msg: string, fields?: Record<string, unknown>): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${msg}${fields ? ` ${JSON.stringify(fields)}` : ""}\n`);
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Rounds to `digits` significant digits (figures are not more precise than that on a shared machine). */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const scale = 10 ** (digits - 1 - Math.floor(Math.log10(Math.abs(x))));
  return Math.round(x * scale) / scale;
}
