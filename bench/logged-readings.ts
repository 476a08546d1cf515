// What the twin's check of logged readings costs on the node's apply path: the device-twin behaviour
// applying readings batches (`loggedReadingsProblem` then the domain), next to its baseline measured in
// the same run — the domain's applyInput on the same batches without the check — and the check alone.
// One JSON line per figure (median of the rounds).
//
//   npm run bench -- logged-readings [--quick] [--twins 2000] [--batches 50] [--per-batch 10] [--rounds 7]
import { parseArgs } from "node:util";
import { deviceTwinBehavior } from "../actors/device-twin/behavior.ts";
import { applyInput, createTwin, loggedReadingsProblem, type Reading, type TwinState } from "../actors/device-twin/domain/mod.ts";
import { rng } from "../test/harness/rng.ts";

export function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      twins: { type: "string" },
      batches: { type: "string" },
      "per-batch": { type: "string", default: "10" },
      rounds: { type: "string" },
    },
  });
  const twins = Number(values.twins ?? (values.quick ? 300 : 2000));
  const batches = Number(values.batches ?? (values.quick ? 20 : 50));
  const perBatch = Number(values["per-batch"]);
  const rounds = Number(values.rounds ?? (values.quick ? 3 : 7));
  const random = rng(7);
  const t0 = Date.UTC(2026, 0, 1);
  // every twin's readings, batch by batch, 5 minutes apart, all six channels
  const logs: Reading[][][] = Array.from({ length: twins }, () =>
    Array.from({ length: batches }, (_, b) =>
      Array.from({ length: perBatch }, (_, i) => ({
        t: t0 + (b * perBatch + i) * 300_000,
        pm: 5 + random() * 40,
        co2: 400 + random() * 1200,
        voc: 50 + random() * 400,
        tmp: 18 + random() * 6,
        hum: 30 + random() * 30,
        allpollu: random() * 60,
      })),
    ),
  );
  const readings = twins * batches * perBatch;
  const behavior = deviceTwinBehavior();
  const ctx = { prefix: "bench", acceptedAt: t0 };

  const timed = (run: () => void): number => {
    const started = performance.now();
    run();
    return (performance.now() - started) / 1000;
  };
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const figures = { baseline: [] as number[], behaviour: [] as number[], check: [] as number[] };
  const baseline = () =>
    figures.baseline.push(
      timed(() => {
        for (let i = 0; i < twins; i++) {
          let s: TwinState = createTwin(`d${i}`);
          for (const batch of logs[i]!) s = applyInput(s, { type: "readings", readings: batch, receivedAt: t0 }).state;
        }
      }),
    );
  const withBehaviour = () =>
    figures.behaviour.push(
      timed(() => {
        for (let i = 0; i < twins; i++) {
          let s = behavior.create(`d${i}`);
          for (const batch of logs[i]!) s = behavior.apply(s, "readings", batch, ctx).state;
        }
      }),
    );
  for (let r = 0; r < rounds; r++) {
    // alternate which goes first: the first of a round pays for garbage the previous one left
    if (r % 2 === 0) {
      baseline();
      withBehaviour();
    } else {
      withBehaviour();
      baseline();
    }
    figures.check.push(
      timed(() => {
        let bad = 0;
        for (let i = 0; i < twins; i++) for (const batch of logs[i]!) if (loggedReadingsProblem(batch) !== undefined) bad++;
        if (bad > 0) throw new Error("valid readings refused");
      }),
    );
  }
  const rate = (seconds: number) => Math.round(readings / seconds);
  const base = median(figures.baseline);
  const withCheck = median(figures.behaviour);
  process.stdout.write(
    `${JSON.stringify({ bench: "logged-readings", readings, rounds, baselineReadingsPerSec: rate(base), behaviourReadingsPerSec: rate(withCheck), ratio: Number((base / withCheck).toFixed(3)), checkAloneReadingsPerSec: rate(median(figures.check)) })}\n`,
  );
}
