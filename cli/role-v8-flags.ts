// The V8 flags `airtwin node` and `airtwin gateway` processes are started with wherever airtwin starts
// them itself (`airtwin dev`, the local cluster: cli/dev-child.ts; the benches). A process cannot give
// itself a larger young generation once running (`v8.setFlagsFromString` leaves its size as it was), so
// the launcher passes them; containers would set `NODE_OPTIONS` likewise (deploy/README.md).

/**
 * `--max-semi-space-size=64` (MB; V8's default on 64-bit is 16): a node allocates mostly short-lived
 * objects per input (decoded batches, readings, outputs); with four times the room fewer of them live
 * through a scavenge and scavenges come four times less often. The node's CPU per reading fell 0.3–1.1
 * µs with it on a quiet machine, the domain's share included (docs/BENCHMARKS.md, "The runtime's own
 * cost: fewer allocations per reading"); the cost is up to ~190 MB more young generation per node
 * process, and each scavenge pauses longer (8–12 ms instead of 5–7 at the fleet's rate, measured before).
 */
export const NODE_ROLE_V8_FLAGS: readonly string[] = ["--max-semi-space-size=64"];

/**
 * The same for the gateway, whose requests leave short-lived objects too (the parsed body, the batch,
 * the answer). Its CPU a request is the same either way at the fleet's cadence (3,333 requests/s: 110
 * µs, medians of five rounds each), but its 202 p99 there fell from 100–390 ms to 65–88 ms (four
 * rounds of five; docs/BENCHMARKS.md, "The gateway's young generation, measured again") — presumably
 * fewer objects outliving a scavenge into the old generation, whose collections pause longer (not traced).
 * At 1,000 requests/s the p99 was the same (~10.5 ms). Up to ~190 MB more memory per gateway process.
 */
export const GATEWAY_ROLE_V8_FLAGS: readonly string[] = ["--max-semi-space-size=64"];

/** The V8 flags of an `airtwin <role>` process started by airtwin itself (none for the other roles). */
export function roleV8Flags(role: string | undefined): readonly string[] {
  if (role === "node") return NODE_ROLE_V8_FLAGS;
  if (role === "gateway") return GATEWAY_ROLE_V8_FLAGS;
  return [];
}
