// Public entry of the actor runtime: actors and gateways import only this module (lint-enforced).
// Foundation only so far: errors, configuration, NATS connection, codec, shard ids.

export { isRuntimeError, RuntimeError, RuntimeErrors } from "./errors.ts";
export type { RuntimeErrorCode, RuntimeErrorName } from "./errors.ts";
export { defaultNodeId, loadConfig } from "./config.ts";
export type { AirtwinConfig, ConfigProblem } from "./config.ts";
export { closeNats, connectNats, natsServerList } from "./connect.ts";
export type { ConnectNatsOptions } from "./connect.ts";
export { decode, encode, MSGPACK_CONTENT_TYPE, msgpackHeaders } from "./codec.ts";
export { fnv1a32, fnv1a32Bytes, shardOf } from "./shard-id.ts";
