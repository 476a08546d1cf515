// Public entry of the actor runtime: actors and gateways import only this module (lint-enforced).
// Errors, configuration, the NATS connection, codec and shard ids; the actor runtime proper (entity
// behaviours, the client, idempotency keys, nodes); cluster operations. docs/runtime.md describes it.

export { isRuntimeError, RuntimeError, RuntimeErrors } from "./errors.ts";
export type { RuntimeErrorCode, RuntimeErrorName } from "./errors.ts";
export { defaultNodeId, loadConfig } from "./config.ts";
export type { AirtwinConfig, ConfigProblem } from "./config.ts";
export { closeNats, connectNats, credentialsOf, maskUrl, natsServerList } from "./connect.ts";
export type { ConnectNatsOptions, ServerCredentials } from "./connect.ts";
export { decode, encode, MSGPACK_CONTENT_TYPE, msgpackHeaders } from "./codec.ts";
export { stderrLog } from "./log.ts";
export { askAgain, askAtStart, backoffMs, pause, retry, START_PATIENCE_MS, worthAskingAgain } from "./backoff.ts";
export { isCasConflict, isStreamNotFound } from "./jetstream-errors.ts";
export type { Backoff } from "./backoff.ts";
export type { LogFn } from "./log.ts";
export { fnv1a32, fnv1a32Bytes, shardOf } from "./shard-id.ts";

// The actor runtime proper.
export type { Applied, ApplyContext, EntityBehavior, EntityOutput } from "./entity.ts";
export { ERASE_KIND } from "./entity.ts";
export { RuntimeClient } from "./client.ts";
export type { CommandOptions, RuntimeClientOptions, SendOptions } from "./client.ts";
export { COMMAND_KEYS_MAX_BYTES, COMMAND_KEYS_PER_ENTITY, IDEMPOTENCY_KEY_MAX_LENGTH, IDEMPOTENCY_KEY_PATTERN, idempotencyKeyProblem } from "./command-keys.ts";
export type { AppliedCommand } from "./command-keys.ts";
export type { EntityQuery, EntityReply } from "./protocol.ts";
export { JS_ERR_WRONG_LAST_SEQUENCE, PipelinedPublisher, PublishError } from "./publisher.ts";
export type { PubAck } from "./publisher.ts";
export { names } from "./subjects.ts";
export type { Names } from "./subjects.ts";
export { decodeRecord, encodeRecord } from "./snapshot-store.ts";
// The input log's message format and a reader's consumer, for readers of the input streams other than the owners (the archive).
export { decodeBatch } from "./envelope.ts";
export { addReaderConsumer } from "./reader-consumer.ts";
export type { ReaderConsumerOptions } from "./reader-consumer.ts";
// Writing snapshots back from outside under a lease of its own (restore from the archive).
export { assertShardsFree, restoreShard, ShardBusyError } from "./restore.ts";
// Snapshots brought forward by the archived inputs after them (restore after losing the input stream).
export { replayRecord } from "./replay.ts";
export type { ReplayInput } from "./replay.ts";
export type { RestoreShardOptions } from "./restore.ts";
export type { InputBatch, InputItem } from "./envelope.ts";
export type { SnapshotRecord } from "./snapshot-store.ts";
export { startNode } from "./node.ts";
export type { RunningNode, StartNodeOptions } from "./node.ts";

// Cluster operations and the cluster's fixed shape, for the gateway's ops routes and `airtwin ops`.
export { OpsClient } from "./ownership/ops.ts";
export type { OpsClientOptions, RebalanceRequest } from "./ownership/ops.ts";
export type { ClusterView, DrainResult, MoveResult, RoundResult, ShardView } from "./ownership/mod.ts";
export { ensureClusterMeta, openClusterBucket } from "./ownership/meta.ts";
export { ensureClusterForClients } from "./cluster-setup.ts";
