// The V8 flags of the processes airtwin starts itself (`airtwin dev`, the local cluster: cli/dev-child.ts;
// the benches) — only `airtwin node` has any. A process cannot give itself a larger young generation
// once running (`v8.setFlagsFromString` leaves its size as it was), so the launcher passes them;
// containers would set `NODE_OPTIONS` likewise (deploy/README.md).

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
 * The gateway starts without flags: the node's flag was measured for it (docs/BENCHMARKS.md, "The
 * gateway's young generation, measured again") and not taken. Its CPU a request is the same either way;
 * its 202 p99 fell at 3,333 requests/s against 80,000 devices (100–390 → 65–88 ms), was the same at
 * 1,000/s (~10.5 ms), and in the fleet of a million devices rose (service p99 275–308 → 442–921 ms, two
 * pairs): no case for it. `bench gateway --gateway-v8=…` and `bench fleet --gateway-v8=…` measure it again.
 *
 * Returns the V8 flags of an `airtwin <role>` process started by airtwin itself.
 */
export function roleV8Flags(role: string | undefined): readonly string[] {
  return role === "node" ? NODE_ROLE_V8_FLAGS : [];
}
