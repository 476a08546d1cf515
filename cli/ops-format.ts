// The human summary of `airtwin ops cluster` (the full view, one entry per shard, stays behind --json):
// the coordinator, each node with its state, shards and their total lag, and the shards nobody owns.
import type { ClusterView } from "../runtime/mod.ts";

/** Shards as compact ranges: [0,1,2,5,7,8] → "0-2,5,7-8". */
export function shardRanges(shards: readonly number[]): string {
  const sorted = [...shards].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** A few lines an operator reads at a glance. */
export function formatClusterSummary(view: ClusterView): string {
  const lines: string[] = [];
  const c = view.coordinator;
  lines.push(`coordinator  ${c === null ? "none (no coordinator elected)" : `${c.nodeId} (epoch ${c.epoch})`}`);
  lines.push(`shards       ${view.shards.length}, answered by ${view.nodeId}`);
  const owned = new Map<string, number[]>();
  const lag = new Map<string, number>();
  const unowned: number[] = [];
  for (const s of view.shards) {
    if (s.owner === null) {
      unowned.push(s.shard);
      continue;
    }
    owned.set(s.owner, [...(owned.get(s.owner) ?? []), s.shard]);
    lag.set(s.owner, (lag.get(s.owner) ?? 0) + (s.lag ?? 0));
  }
  const nodeIds = [...new Set([...view.nodes.map((n) => n.nodeId), ...owned.keys()])].sort();
  const width = Math.max(4, ...nodeIds.map((n) => n.length));
  lines.push("", `${"node".padEnd(width)}  state      shards  lag       owned`);
  for (const id of nodeIds) {
    const n = view.nodes.find((x) => x.nodeId === id);
    const state = n === undefined ? "unknown" : !n.live ? "down" : n.leaving ? "leaving" : n.draining ? "draining" : "live";
    const mine = owned.get(id) ?? [];
    lines.push(`${id.padEnd(width)}  ${state.padEnd(9)}  ${String(mine.length).padStart(6)}  ${String(lag.get(id) ?? 0).padEnd(8)}  ${mine.length === 0 ? "-" : shardRanges(mine)}`);
  }
  if (nodeIds.length === 0) lines.push("(no nodes)");
  lines.push("", unowned.length === 0 ? "unowned      none" : `unowned      ${unowned.length}: ${shardRanges(unowned)}`);
  return `${lines.join("\n")}\n`;
}
