// Issue 15, chaos: the whole system as separate processes on a 3-server NATS cluster under a simulated
// fleet, with seeded faults of every kind (test/chaos/faults.ts), then every accepted reading checked
// end to end (test/chaos/checks.ts). `npm run test:chaos` runs the full profile, `-- --short` the short
// seeded one (scripts/chaos.js). A failure prints its seed: `npm run test:chaos -- --seed N`.
import { describe, expect, it } from "vitest";
import { chaosParams } from "./params.ts";
import { runChaos } from "./run.ts";

const params = chaosParams();

// The short run is part of `npm test` (seed 15, 8 faults, a few minutes); `npm run test:chaos` runs the
// full one. The checks are the same in both.
describe("chaos", () => {
  it(
    `${params.profile} run, seed ${params.seed}: every accepted reading applied once, statistics, alerts, archive and webhook exact after ${params.faults} faults`,
    { timeout: params.profile === "full" ? 3 * 3600_000 : 900_000 },
    async () => {
      const { summary, problems } = await runChaos(params);
      console.log(summary);
      expect(problems, `chaos seed ${params.seed} found problems (reproduce: npm run test:chaos -- --seed ${params.seed})`).toEqual([]);
    },
  );
});
