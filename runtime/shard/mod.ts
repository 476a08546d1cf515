// One owned shard's processing (see runner.ts); the node host creates a runner per shard it owns.
export { ShardRunner, type ShardPhase } from "./runner.ts";
export { defaultShardRunnerOptions, type ShardRunnerDeps, type ShardRunnerOptions } from "./options.ts";
export { commitDeferred } from "./commit.ts";
