// `npm install` under the Node versions we promise prints no EBADENGINE warning: every package of the
// lockfile (dependencies, dev dependencies, and what they pull in) accepts every Node version of our
// `engines` range, and the Node running the tests is one of them. A dependency that moves to Node 22
// fails here (pin it, or override it in package.json's "overrides", as content-disposition, cookie and
// @nats-io/nuid are).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import semver from "semver";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const pkg = JSON.parse(readFileSync(resolve(root, "package.json"), "utf8")) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(resolve(root, "package-lock.json"), "utf8")) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
};

describe("engines", () => {
  it("promises a range the running Node is in", () => {
    expect(semver.validRange(pkg.engines.node)).not.toBeNull();
    expect(semver.satisfies(process.versions.node, pkg.engines.node)).toBe(true);
  });

  it("has no package in the lockfile that wants a Node outside our range", () => {
    const narrower = Object.entries(lock.packages)
      .filter(([path]) => path !== "")
      .flatMap(([path, meta]) => {
        const wanted = !Array.isArray(meta.engines) ? meta.engines?.node : undefined;
        return wanted !== undefined && !semver.subset(pkg.engines.node, wanted) ? [`${path}@${meta.version}: node ${wanted}`] : [];
      });
    expect(narrower, `packages that would warn EBADENGINE under ${pkg.engines.node}`).toEqual([]);
  });
});
