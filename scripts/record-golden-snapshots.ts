// Re-records the golden snapshot corpus (test/domain/snapshot-golden/data.ts) with the
// current encoder: run it only for a deliberate change of the snapshot format or of the state an input
// log produces, and say which in the commit. Keeps the set of checkpoints whose whole bytes are stored.
//
//   node --import tsx scripts/record-golden-snapshots.ts
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { goldenCorpus, hash53, replayCorpusTwin } from "../test/domain/snapshot-golden/corpus.ts";
import { GOLDEN_SNAPSHOTS } from "../test/domain/snapshot-golden/data.ts";
import { encodeTwin } from "../actors/device-twin/domain/twin-snapshot.ts";

const target = fileURLToPath(new URL("../test/domain/snapshot-golden/data.ts", import.meta.url));
const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
const stored = new Set(Object.keys(GOLDEN_SNAPSHOTS));

const hashes: Record<string, string[]> = {};
const snapshots: Record<string, string> = {};
for (const twin of goldenCorpus()) {
  hashes[twin.name] = [];
  replayCorpusTwin(twin, (state, index) => {
    const bytes = encodeTwin(state);
    hashes[twin.name]!.push(`${bytes.length}:${hash53(bytes)}`);
    const key = `${twin.name}@${index}`;
    if (stored.has(key)) snapshots[key] = Buffer.from(bytes).toString("base64");
  });
}

const body = `// Generated from the snapshot encoder of commit ${commit} (and the working tree on it) by
// scripts/record-golden-snapshots.ts, replaying corpus.ts (see twin-snapshot.golden.test.ts).
// Do not edit; a change here is a change of the snapshot format.

/** Per corpus twin: \`length:hash53\` of encodeTwin's bytes after each segment. */
export const GOLDEN_HASHES: Readonly<Record<string, readonly string[]>> = ${JSON.stringify(hashes, null, 2)};

/** Whole snapshots (base64) of some checkpoints, \`<twin>@<segment>\`: old bytes the decoder must read. */
export const GOLDEN_SNAPSHOTS: Readonly<Record<string, string>> = {
${Object.entries(snapshots).map(([k, v]) => `  ${JSON.stringify(k)}:\n    ${JSON.stringify(v)},`).join("\n")}
};
`;
writeFileSync(target, body);
process.stdout.write(`recorded ${Object.keys(hashes).length} twins, ${Object.keys(snapshots).length} whole snapshots into ${target}\n`);
