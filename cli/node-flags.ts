// The V8 flags an `airtwin node` process is started with wherever airtwin starts one itself (`airtwin dev`,
// the local cluster: cli/dev-child.ts; the runtime bench). A process cannot give itself a larger young
// generation once running (`v8.setFlagsFromString` leaves its size as it was), so the launcher passes
// them; containers set `NODE_OPTIONS` for node containers likewise (deploy/README.md).

/**
 * `--max-semi-space-size=64` (MB; V8's default on 64-bit is 16): a node allocates mostly short-lived
 * objects per input (decoded batches, readings, outputs); with four times the room fewer of them live
 * through a scavenge and scavenges come four times less often. The node's CPU per reading fell 0.3–1.1
 * µs with it on a quiet machine, the domain's share included (docs/BENCHMARKS.md, "The runtime's own
 * cost: fewer allocations per reading"); the cost is up to ~190 MB more young generation per node
 * process, and each scavenge pauses longer (8–12 ms instead of 5–7 at the fleet's rate, measured before).
 */
export const NODE_ROLE_V8_FLAGS: readonly string[] = ["--max-semi-space-size=64"];
