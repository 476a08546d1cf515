// The node's entity gauges count what its entity tables hold, however a shard's run ends: entities
// loaded by the bulk load and made by input are counted as they are made and uncounted when the table is
// cleared. (`airtwin_known_entities` went negative on a node whose shards were aborted between their bulk
// load and their first message: the load's entities were counted only once the start finished.)
import { describe, expect, it } from "vitest";
import { counterBehavior } from "../../test/runtime/counter-behavior.ts";
import { RuntimeMetrics } from "../metrics.ts";
import { EntityTable } from "./entities.ts";

const gauge = async (metrics: RuntimeMetrics, name: "knownEntities" | "compactEntities" | "residentEntities") => (await metrics[name].get()).values[0]?.value ?? 0;

function shardTable(metrics: RuntimeMetrics, loaded: number): EntityTable {
  const table = new EntityTable(new Map([["counter", counterBehavior]]), metrics, 600_000, 1000);
  for (let i = 0; i < loaded; i++) {
    const state = counterBehavior.encode({ id: `l${i}`, n: 1, sum: i, ticks: 0 });
    table.load(`counter.l${i}`, { appliedSeq: i + 1, wakeAt: undefined, state });
  }
  return table;
}

describe("entity gauges", () => {
  it("count loaded and new entities, and are back to what the other shards hold once a shard is cleared, started or not", async () => {
    const metrics = new RuntimeMetrics({ defaultMetrics: false });
    const running = shardTable(metrics, 5);
    const newcomer = running.slotFor("counter", "n1")!;
    running.activate(newcomer);
    const abortedAfterLoad = shardTable(metrics, 7); // its start never finished
    expect(await gauge(metrics, "knownEntities")).toBe(5 + 1 + 7);
    expect(await gauge(metrics, "compactEntities")).toBe(5 + 7);

    abortedAfterLoad.clear();
    expect([await gauge(metrics, "knownEntities"), await gauge(metrics, "compactEntities")]).toEqual([6, 5]);
    abortedAfterLoad.clear(); // a second clear finds nothing left
    expect(await gauge(metrics, "knownEntities")).toBe(6);

    running.clear();
    expect([await gauge(metrics, "knownEntities"), await gauge(metrics, "compactEntities"), await gauge(metrics, "residentEntities")]).toEqual([0, 0, 0]);
  });
});
