// NAB scoring (Numenta Anomaly Benchmark, "standard" profile: A_TP 1, A_FP 0.11, A_FN 1), for one or
// many series: each label gets a window of 10% of its series' length divided by its number of labels,
// centred on the label's start (and stretched to its end); the first detection in a window scores
// σ(y) = 2/(1+e^{5y}) − 1 with y from −1 (window start) to 0 (window end); a detection outside every
// window costs 0.11·|σ(y)| with y its distance past the last window (in window lengths), or 0.11 before
// any; a window without a detection costs 1. Normalized: 100·(S − S_null)/(S_perfect − S_null), where
// the null detector never fires and the perfect one fires at each window's start.

const A_TP = 1;
const A_FP = 0.11;
const A_FN = 1;

const sigma = (y: number): number => 2 / (1 + Math.exp(5 * y)) - 1;

/** One series to score: the times of its readings, its labels' [start, end], and a detector's alarm times. */
export interface NabSeries {
  times: readonly number[];
  labels: ReadonlyArray<{ start: number; end: number }>;
  detections: readonly number[];
}

export interface NabTotals {
  raw: number;
  perfect: number;
  null: number;
  truePositives: number;
  falsePositives: number;
  windows: number;
}

export function nabTotals(series: readonly NabSeries[]): NabTotals {
  const totals: NabTotals = { raw: 0, perfect: 0, null: 0, truePositives: 0, falsePositives: 0, windows: 0 };
  for (const s of series) {
    const n = s.times.length;
    if (n === 0) continue;
    const index = (t: number): number => {
      let lo = 0, hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((s.times[mid] as number) < t) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    const half = s.labels.length === 0 ? 0 : Math.max(1, Math.floor((0.1 * n) / s.labels.length / 2));
    const windows = s.labels.map((l) => {
      const at = index(l.start);
      return { from: Math.max(0, at - half), to: Math.min(n - 1, Math.max(at + half, index(l.end))), hit: false };
    });
    totals.windows += windows.length;
    totals.perfect += windows.length * A_TP * sigma(-1);
    totals.null -= windows.length * A_FN;
    for (const d of [...s.detections].sort((a, b) => a - b)) {
      const i = index(d);
      const w = windows.find((x) => i >= x.from && i <= x.to);
      if (w !== undefined) {
        if (w.hit) continue;
        w.hit = true;
        totals.truePositives++;
        totals.raw += A_TP * sigma((i - w.to) / Math.max(1, w.to - w.from));
        continue;
      }
      totals.falsePositives++;
      const before = windows.filter((x) => x.to < i).at(-1);
      totals.raw -= before === undefined ? A_FP : A_FP * Math.abs(sigma((i - before.to) / Math.max(1, before.to - before.from)));
    }
    for (const w of windows) if (!w.hit) totals.raw -= A_FN;
  }
  return totals;
}

/** The normalized NAB score (0: never fires; 100: perfect). */
export function nabScore(t: NabTotals): number {
  return t.perfect === t.null ? 0 : (100 * (t.raw - t.null)) / (t.perfect - t.null);
}
