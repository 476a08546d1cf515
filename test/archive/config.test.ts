// `airtwin archive` configuration: defaults, and every invalid variable named in one coded error.
import { describe, expect, it } from "vitest";
import { loadArchiveConfig } from "../../gateways/archive/config.ts";

describe("archive configuration", () => {
  it("has documented defaults", () => {
    expect(loadArchiveConfig({})).toMatchObject({ retentionDays: 0, batchMessages: 256, flushDelayMs: 200, schema: undefined, runtime: { databaseUrl: undefined, dataDir: ".airtwin" } });
  });

  it("names every invalid variable, the runtime's included", () => {
    let error: unknown;
    try {
      loadArchiveConfig({ AIRTWIN_ARCHIVE_RETENTION_DAYS: "-1", AIRTWIN_ARCHIVE_BATCH: "0", AIRTWIN_ARCHIVE_FLUSH_MS: "5001", AIRTWIN_ARCHIVE_SCHEMA: "Bad-Schema", AIRTWIN_SHARDS: "0" });
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: "AIRTWIN_ERR_CONFIG_INVALID" });
    expect((error as { details: { variables: string[] } }).details.variables.sort()).toEqual(["AIRTWIN_ARCHIVE_BATCH", "AIRTWIN_ARCHIVE_FLUSH_MS", "AIRTWIN_ARCHIVE_RETENTION_DAYS", "AIRTWIN_ARCHIVE_SCHEMA", "AIRTWIN_SHARDS"]);
  });
});
