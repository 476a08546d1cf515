import { describe, expect, it } from "vitest";
import { validateDeviceId } from "./ids.ts";

describe("validateDeviceId", () => {
  it.each(["a", "Foobot-240D676D40001482", "dev_1", "A".repeat(64), "0-_"])("accepts %j", (id) => {
    expect(validateDeviceId(id)).toBeUndefined();
  });

  it.each([
    ["", "1-64 characters"],
    ["A".repeat(65), "1-64 characters"],
    ["dev.1", "only A-Z"],
    ["dev 1", "only A-Z"],
    ["dev*", "only A-Z"],
    ["dév", "only A-Z"],
    ["a>b", "only A-Z"],
    [42, "string"],
    [null, "string"],
    [undefined, "string"],
  ])("rejects %j", (id, why) => {
    const p = validateDeviceId(id);
    expect(p?.code).toBe("AIRTWIN_ERR_DEVICE_ID_INVALID");
    expect(p?.details).toEqual([{ field: "deviceId", message: expect.stringContaining(why) }]);
  });
});
