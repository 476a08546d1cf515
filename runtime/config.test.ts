// loadConfig: documented defaults, every variable parsed, and every invalid value rejected with
// AIRTWIN_ERR_CONFIG_INVALID naming the variable.

import { describe, expect, it } from "vitest";
import { defaultNodeId, loadConfig, type AirtwinConfig } from "./config.ts";
import { isRuntimeError, RuntimeError } from "./errors.ts";

describe("loadConfig defaults", () => {
  it("gives the documented defaults for an empty environment", () => {
    const c = loadConfig({});
    expect({ ...c, nodeId: "(checked below)" }).toEqual({
      natsUrl: "nats://127.0.0.1:4222",
      natsServers: ["nats://127.0.0.1:4222"],
      databaseUrl: undefined,
      adminToken: undefined,
      httpPort: 8080,
      shards: 64,
      streams: 1,
      nodeId: "(checked below)",
      metricsPort: undefined,
      metricsHost: "127.0.0.1",
      prefix: "airtwin",
      replicas: 1,
      dataDir: ".airtwin",
      commitIntervalMs: 1000,
      commitMaxIntervalMs: 5000,
      snapshotIntervalMs: 1_800_000,
      snapshotPacing: true,
      leaseTtlMs: 5000,
      heartbeatMs: 1000,
      idlePassivateMs: 600_000,
      compactAfterMs: 30_000,
      memoryBudgetMb: 1024,
      fetchBatch: 32,
    } satisfies AirtwinConfig);
    expect(c.nodeId).toBe(defaultNodeId());
    expect(c.nodeId).toMatch(new RegExp(`^[A-Za-z0-9_-]{1,64}$`));
    expect(c.nodeId.endsWith(`-${process.pid}`)).toBe(true);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("treats empty and blank values as unset", () => {
    expect(loadConfig({ AIRTWIN_SHARDS: "", NATS_URL: "  ", DATABASE_URL: "" })).toMatchObject({
      shards: 64,
      natsUrl: "nats://127.0.0.1:4222",
      databaseUrl: undefined,
    });
  });
});

describe("loadConfig accepts", () => {
  const cases: [Record<string, string>, Partial<AirtwinConfig>][] = [
    [{ NATS_URL: "nats://10.0.0.1:4222" }, { natsUrl: "nats://10.0.0.1:4222", natsServers: ["nats://10.0.0.1:4222"] }],
    [{ NATS_URL: "nats://a:4222, nats://b:4222,c:4223" }, { natsServers: ["nats://a:4222", "nats://b:4222", "c:4223"] }],
    [{ NATS_URL: "tls://nats.example.com" }, { natsServers: ["tls://nats.example.com"] }],
    [{ NATS_URL: "ws://localhost:8080" }, { natsServers: ["ws://localhost:8080"] }],
    [{ DATABASE_URL: "postgres://u:p@db:5432/airtwin" }, { databaseUrl: "postgres://u:p@db:5432/airtwin" }],
    [{ DATABASE_URL: "postgresql://db/airtwin" }, { databaseUrl: "postgresql://db/airtwin" }],
    [{ AIRTWIN_ADMIN_TOKEN: "s3cr3t-token" }, { adminToken: "s3cr3t-token" }],
    [{ AIRTWIN_HTTP_PORT: "0" }, { httpPort: 0 }],
    [{ AIRTWIN_HTTP_PORT: "65535" }, { httpPort: 65535 }],
    [{ AIRTWIN_METRICS_PORT: "9464" }, { metricsPort: 9464 }],
    [{ AIRTWIN_METRICS_PORT: "9464", AIRTWIN_METRICS_HOST: "0.0.0.0" }, { metricsPort: 9464, metricsHost: "0.0.0.0" }],
    [{ AIRTWIN_METRICS_PORT: "0", AIRTWIN_HTTP_PORT: "0" }, { metricsPort: 0, httpPort: 0 }],
    [{ AIRTWIN_SHARDS: "1" }, { shards: 1 }],
    [{ AIRTWIN_SHARDS: "4096", AIRTWIN_STREAMS: "64" }, { shards: 4096, streams: 64 }],
    [{ AIRTWIN_SHARDS: "8", AIRTWIN_STREAMS: "8" }, { shards: 8, streams: 8 }],
    [{ AIRTWIN_SHARDS: " 128 " }, { shards: 128 }],
    [{ AIRTWIN_NODE_ID: "node-1_a" }, { nodeId: "node-1_a" }],
    [{ AIRTWIN_NODE_ID: "n".repeat(64) }, { nodeId: "n".repeat(64) }],
    [{ AIRTWIN_PREFIX: "test_42-x" }, { prefix: "test_42-x" }],
    [{ AIRTWIN_REPLICAS: "3" }, { replicas: 3, leaseTtlMs: 10_000, heartbeatMs: 1000 }],
    [{ AIRTWIN_REPLICAS: "5" }, { replicas: 5, leaseTtlMs: 10_000 }],
    [{ AIRTWIN_REPLICAS: "3", AIRTWIN_LEASE_TTL_MS: "4000" }, { replicas: 3, leaseTtlMs: 4000 }],
    [{ AIRTWIN_DATA_DIR: "/var/lib/airtwin" }, { dataDir: "/var/lib/airtwin" }],
    [{ AIRTWIN_COMMIT_INTERVAL_MS: "250" }, { commitIntervalMs: 250, commitMaxIntervalMs: 5000 }],
    [{ AIRTWIN_COMMIT_INTERVAL_MS: "10000" }, { commitIntervalMs: 10_000, commitMaxIntervalMs: 10_000 }],
    [{ AIRTWIN_COMMIT_MAX_INTERVAL_MS: "1000" }, { commitIntervalMs: 1000, commitMaxIntervalMs: 1000 }],
    [{ AIRTWIN_COMMIT_MAX_INTERVAL_MS: "60000" }, { commitMaxIntervalMs: 60_000 }],
    [{ AIRTWIN_LEASE_TTL_MS: "10000", AIRTWIN_HEARTBEAT_MS: "5000" }, { leaseTtlMs: 10_000, heartbeatMs: 5000 }],
    [{ AIRTWIN_IDLE_PASSIVATE_MS: "0" }, { idlePassivateMs: 0 }],
    [{ AIRTWIN_COMPACT_AFTER_MS: "0" }, { compactAfterMs: 0 }],
    [{ AIRTWIN_SNAPSHOT_PACING: "off" }, { snapshotPacing: false }],
    [{ AIRTWIN_SNAPSHOT_PACING: "on" }, { snapshotPacing: true }],
    [{ AIRTWIN_MEMORY_BUDGET_MB: "16" }, { memoryBudgetMb: 16 }],
    [{ AIRTWIN_FETCH_BATCH: "1" }, { fetchBatch: 1 }],
    [{ AIRTWIN_FETCH_BATCH: "10000" }, { fetchBatch: 10_000 }],
  ];
  it.each(cases)("%j", (env, expected) => {
    expect(loadConfig(env)).toMatchObject(expected);
  });
});

describe("loadConfig rejects", () => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ NATS_URL: "http://localhost:4222" }, "NATS_URL", /scheme http:/],
    [{ NATS_URL: "nats://a:4222,,nats://b:4222" }, "NATS_URL", /is empty/],
    [{ NATS_URL: "nats://host:99999" }, "NATS_URL", /not a URL/],
    [{ DATABASE_URL: "mysql://db/x" }, "DATABASE_URL", /postgres:\/\//],
    [{ AIRTWIN_ADMIN_TOKEN: "two words" }, "AIRTWIN_ADMIN_TOKEN", /whitespace/],
    [{ AIRTWIN_HTTP_PORT: "http" }, "AIRTWIN_HTTP_PORT", /integer from 0 to 65535/],
    [{ AIRTWIN_HTTP_PORT: "65536" }, "AIRTWIN_HTTP_PORT", /integer from 0 to 65535/],
    [{ AIRTWIN_HTTP_PORT: "-1" }, "AIRTWIN_HTTP_PORT", /integer/],
    [{ AIRTWIN_HTTP_PORT: "80.5" }, "AIRTWIN_HTTP_PORT", /integer/],
    [{ AIRTWIN_HTTP_PORT: "8080abc" }, "AIRTWIN_HTTP_PORT", /integer/],
    [{ AIRTWIN_HTTP_PORT: "1e3" }, "AIRTWIN_HTTP_PORT", /integer/],
    [{ AIRTWIN_METRICS_PORT: "8080" }, "AIRTWIN_METRICS_PORT", /differ from AIRTWIN_HTTP_PORT/],
    [{ AIRTWIN_METRICS_PORT: "x" }, "AIRTWIN_METRICS_PORT", /integer/],
    [{ AIRTWIN_METRICS_HOST: "a b" }, "AIRTWIN_METRICS_HOST", /host name or IP/],
    [{ AIRTWIN_SHARDS: "0" }, "AIRTWIN_SHARDS", /integer from 1 to 4096/],
    [{ AIRTWIN_SHARDS: "4097" }, "AIRTWIN_SHARDS", /integer from 1 to 4096/],
    [{ AIRTWIN_SHARDS: "0x40" }, "AIRTWIN_SHARDS", /integer/],
    [{ AIRTWIN_STREAMS: "0" }, "AIRTWIN_STREAMS", /integer from 1 to 64/],
    [{ AIRTWIN_STREAMS: "65", AIRTWIN_SHARDS: "4096" }, "AIRTWIN_STREAMS", /integer from 1 to 64/],
    [{ AIRTWIN_STREAMS: "9", AIRTWIN_SHARDS: "8" }, "AIRTWIN_STREAMS", /must not exceed AIRTWIN_SHARDS \(8\)/],
    [{ AIRTWIN_NODE_ID: "node.1" }, "AIRTWIN_NODE_ID", /\[A-Za-z0-9_-\]/],
    [{ AIRTWIN_NODE_ID: "n".repeat(65) }, "AIRTWIN_NODE_ID", /1-64/],
    [{ AIRTWIN_NODE_ID: "a*" }, "AIRTWIN_NODE_ID", /1-64/],
    [{ AIRTWIN_PREFIX: "air.twin" }, "AIRTWIN_PREFIX", /subject token/],
    [{ AIRTWIN_PREFIX: ">" }, "AIRTWIN_PREFIX", /subject token/],
    [{ AIRTWIN_PREFIX: "p".repeat(33) }, "AIRTWIN_PREFIX", /1-32/],
    [{ AIRTWIN_REPLICAS: "2" }, "AIRTWIN_REPLICAS", /1, 3 or 5/],
    [{ AIRTWIN_REPLICAS: "7" }, "AIRTWIN_REPLICAS", /integer from 1 to 5/],
    [{ AIRTWIN_COMMIT_INTERVAL_MS: "5" }, "AIRTWIN_COMMIT_INTERVAL_MS", /integer from 10 to 60000/],
    [{ AIRTWIN_COMMIT_MAX_INTERVAL_MS: "500" }, "AIRTWIN_COMMIT_MAX_INTERVAL_MS", /at least AIRTWIN_COMMIT_INTERVAL_MS \(1000\)/],
    [{ AIRTWIN_COMMIT_MAX_INTERVAL_MS: "60001" }, "AIRTWIN_COMMIT_MAX_INTERVAL_MS", /integer from 10 to 60000/],
    [{ AIRTWIN_LEASE_TTL_MS: "100" }, "AIRTWIN_LEASE_TTL_MS", /integer from 500/],
    [{ AIRTWIN_HEARTBEAT_MS: "3000" }, "AIRTWIN_HEARTBEAT_MS", /at most half of AIRTWIN_LEASE_TTL_MS \(5000\)/],
    [{ AIRTWIN_HEARTBEAT_MS: "10" }, "AIRTWIN_HEARTBEAT_MS", /integer from 50/],
    [{ AIRTWIN_IDLE_PASSIVATE_MS: "-5" }, "AIRTWIN_IDLE_PASSIVATE_MS", /integer/],
    [{ AIRTWIN_MEMORY_BUDGET_MB: "8" }, "AIRTWIN_MEMORY_BUDGET_MB", /integer from 16/],
    [{ AIRTWIN_FETCH_BATCH: "0" }, "AIRTWIN_FETCH_BATCH", /integer from 1 to 10000/],
    [{ AIRTWIN_SNAPSHOT_PACING: "yes" }, "AIRTWIN_SNAPSHOT_PACING", /must be on or off/],
  ];
  it.each(cases)("%j names %s", (env, variable, reason) => {
    let caught: unknown;
    try {
      loadConfig(env);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RuntimeError);
    const err = caught as RuntimeError;
    expect(isRuntimeError(err, "CONFIG_INVALID")).toBe(true);
    expect(err.code).toBe("AIRTWIN_ERR_CONFIG_INVALID");
    expect(err.message).toContain(variable);
    expect(err.message).toMatch(reason);
    expect(err.details?.variables).toEqual([variable]);
  });

  it("reports every invalid variable at once", () => {
    expect(() => loadConfig({ AIRTWIN_SHARDS: "x", AIRTWIN_REPLICAS: "2", NATS_URL: "ftp://x" })).toThrow(
      expect.objectContaining({
        details: expect.objectContaining({ variables: ["NATS_URL", "AIRTWIN_SHARDS", "AIRTWIN_REPLICAS"] }),
      }),
    );
  });

  it("never echoes secrets", () => {
    const run = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (err) {
        return (err as Error).message;
      }
      return "";
    };
    expect(run({ DATABASE_URL: "mysql://user:hunter2@db/x" })).not.toContain("hunter2");
    expect(run({ AIRTWIN_ADMIN_TOKEN: "hunter2 x" })).not.toContain("hunter2");
  });
});
