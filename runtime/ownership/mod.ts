// Public entry of cluster ownership: start it on a node, ask the coordinator through the ops client, plan offline.

export { startOwnership } from "./ownership.ts";
export type { Ownership, OwnershipEvents, StartOwnershipArgs } from "./ownership.ts";
export type { OwnershipConfig, OwnershipOptions } from "./options.ts";
export type { LogFn } from "../log.ts";
export { resolveOwnershipConfig } from "./options.ts";
export { OpsClient, OPS_VERBS } from "./ops.ts";
export type { OpsClientOptions, OpsVerb, RebalanceRequest } from "./ops.ts";
export type { DrainResult, MoveResult, RoundResult } from "./coordinator.ts";
export type { ClusterView, ShardView } from "./view.ts";
export type { NodeInfo } from "./membership.ts";
export { planAssignment, DEFAULT_MAX_MOVES } from "./plan.ts";
export type { Move, MoveReason, Plan, PlanInput, PlanNode } from "./plan.ts";
