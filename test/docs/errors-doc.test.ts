// docs/errors.md and the error catalogues agree: every code of every catalogue (each `errors.ts` that
// exports `{ NAME: { code, message } }` objects) is documented once, with the HTTP status the gateway
// answers with, and every documented code exists. New catalogues are found without editing this test.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SKIP = new Set(["node_modules", ".git", ".airtwin", "coverage", "dist", "test"]);

/** Every `errors.ts` under the source folders (not tests, not dependencies). */
function catalogueFiles(dir = root, depth = 0): string[] {
  if (depth > 4) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".") || SKIP.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...catalogueFiles(path, depth + 1));
    else if (entry.name === "errors.ts") out.push(path);
  }
  return out.sort();
}

interface Entry {
  code: string;
  message: string;
}

function isCatalogue(value: unknown): value is Record<string, Entry> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const entries = Object.values(value);
  return (
    entries.length > 0 &&
    entries.every((e) => typeof e === "object" && e !== null && typeof e.code === "string" && typeof e.message === "string")
  );
}

/** code → where it is defined, from every exported catalogue object. */
async function loadCatalogues(): Promise<{ codes: Map<string, string[]>; names: string[] }> {
  const codes = new Map<string, string[]>();
  const names: string[] = [];
  for (const file of catalogueFiles()) {
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const [exportName, value] of Object.entries(mod)) {
      if (!isCatalogue(value)) continue;
      const where = `${relative(root, file)}#${exportName}`;
      names.push(where);
      for (const e of Object.values(value)) codes.set(e.code, [...(codes.get(e.code) ?? []), where]);
    }
  }
  return { codes, names };
}

/** code → HTTP column of docs/errors.md (each row whose first cell is a backticked code). */
function documented(): { rows: Map<string, string>; duplicates: string[] } {
  const text = readFileSync(join(root, "docs/errors.md"), "utf8");
  const rows = new Map<string, string>();
  const duplicates: string[] = [];
  for (const m of text.matchAll(/^\|\s*`(AIRTWIN_ERR_[A-Z0-9_]+)`\s*\|\s*([^|]*?)\s*\|\s*([^|]*?)\s*\|/gm)) {
    const [, code, status, meaning] = m;
    if (rows.has(code!)) duplicates.push(code!);
    rows.set(code!, status!);
    expect(meaning, `${code} has a meaning`).not.toBe("");
  }
  return { rows, duplicates };
}

/** The gateway's code → status table, once gateways/errors.ts exists. */
async function gatewayStatus(): Promise<Readonly<Record<string, number>> | undefined> {
  const file = join(root, "gateways/errors.ts");
  if (!existsSync(file)) return undefined;
  const mod = (await import(pathToFileURL(file).href)) as { HTTP_STATUS?: Readonly<Record<string, number>> };
  return mod.HTTP_STATUS;
}

describe("docs/errors.md", async () => {
  const { codes, names } = await loadCatalogues();
  const { rows, duplicates } = documented();

  it("finds the catalogues (the domain's and the runtime's at least)", () => {
    expect(names).toEqual(
      expect.arrayContaining(["actors/device-twin/domain/errors.ts#DomainErrors", "runtime/errors.ts#RuntimeErrors"]),
    );
    expect(codes.size).toBeGreaterThanOrEqual(20);
  });

  it("uses well-formed codes, each defined once", () => {
    for (const [code, where] of codes) {
      expect(code).toMatch(/^AIRTWIN_ERR_[A-Z0-9]+(_[A-Z0-9]+)+$/);
      expect(where, `${code} is defined in more than one catalogue`).toHaveLength(1);
    }
  });

  it("documents every code of every catalogue", () => {
    const missing = [...codes.keys()].filter((c) => !rows.has(c));
    expect(missing, "codes missing from docs/errors.md").toEqual([]);
  });

  it("documents only codes that exist, each once", () => {
    const unknown = [...rows.keys()].filter((c) => !codes.has(c));
    expect(unknown, "documented codes no catalogue defines").toEqual([]);
    expect(duplicates).toEqual([]);
  });

  it("gives each code the HTTP status the gateway answers with (— when it never reaches HTTP)", async () => {
    const table = await gatewayStatus();
    for (const [code, status] of rows) {
      expect(status, code).toMatch(/^(\d{3}|—)$/);
      if (table) expect(status, `${code}: docs vs gateways/errors.ts HTTP_STATUS`).toBe(code in table ? String(table[code]) : "—");
    }
  });
});
