// docs/design.md stays the reference the tree cites: every "docs/design.md §n" citation (code comments,
// test names, docs) names a section that exists; no citation of the design document that is not in the
// repository is left; the relative links and backticked repository paths of docs/*.md and README.md
// exist; and every test that design.md §3 names as the proof of a guarantee exists in the file it names.
// Files move (shard-runner.ts into runtime/shard/, tests after them): this test says which line to fix.

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DESIGN = "docs/design.md";
const SKIP_DIRS = new Set(["node_modules", ".git", ".airtwin", "coverage", "dist", "data"]);
const TEXT_FILES = /\.(ts|js|mjs|cjs|md|conf|ya?ml|sh|sql|html|css)$/;

/** Repository-relative paths of every text file that may cite the design (sources, tests, docs, configs). */
function textFiles(dir = root): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP_DIRS.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...textFiles(path));
    else if (TEXT_FILES.test(entry.name) && statSync(path).size < 2_000_000) out.push(relative(root, path));
  }
  return out.sort();
}

const read = (file: string): string => readFileSync(join(root, file), "utf8");
const lineOf = (text: string, index: number): number => text.slice(0, index).split("\n").length;

/** Section numbers of design.md: "## 3. Guarantees" → "3", "### 3.1 Accepted…" → "3.1". */
function designSections(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^#{2,4} (\d+(?:\.\d+)*)\.? /gm)) out.add(m[1]!);
  return out;
}

const SECTION = /§(\d+(?:\.\d+)*)/g;

/** Every section a file cites, with its line: "docs/design.md §4", "§4/§5", "§3.1", wrapped lines too. */
function citations(file: string, text: string): Array<{ where: string; section: string }> {
  const out: Array<{ where: string; section: string }> = [];
  if (file === DESIGN) {
    // the document's own cross-references ("(§5.3)")
    for (const m of text.matchAll(SECTION)) out.push({ where: `${file}:${lineOf(text, m.index)}`, section: m[1]! });
    return out;
  }
  for (const m of text.matchAll(/docs\/design\.md(\s+§\d+(?:\.\d+)*(?:\s*(?:\/|,|and|or|–)\s*§\d+(?:\.\d+)*)*)/g)) {
    for (const s of m[1]!.matchAll(SECTION)) out.push({ where: `${file}:${lineOf(text, m.index)}`, section: s[1]! });
  }
  return out;
}

/** The Markdown documents whose links and paths must resolve. */
function markdownDocs(): string[] {
  const docs = readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`);
  return ["README.md", ...docs.sort()];
}

/** Relative link targets `[text](target)` of a Markdown file (no URLs, no pure anchors). */
function relativeLinks(text: string): Array<{ target: string; line: number }> {
  const out: Array<{ target: string; line: number }> = [];
  for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("#")) continue;
    out.push({ target: target.replace(/#.*$/, ""), line: lineOf(text, m.index) });
  }
  return out;
}

/** The repository's top-level folders (runtime, actors, gateways, sim, …), as they are now. */
const TOP_LEVEL = readdirSync(root, { withFileTypes: true })
  .filter((e) => e.isDirectory() && !e.name.startsWith(".") && !SKIP_DIRS.has(e.name))
  .map((e) => e.name)
  .concat("data");
const REPO_PATH = new RegExp(`^(?:(?:${TOP_LEVEL.join("|")})/[A-Za-z0-9_./-]*|README\\.md|package\\.json|eslint\\.config\\.js|tsconfig\\.json|vitest\\.config\\.ts|\\.ci/run)$`);

/** Backticked tokens that are concrete repository paths (no placeholders such as `<suite>` or `*`). */
function backtickedPaths(text: string): Array<{ path: string; line: number }> {
  const out: Array<{ path: string; line: number }> = [];
  for (const m of text.matchAll(/`([^`\n]+)`/g)) {
    const token = m[1]!;
    if (REPO_PATH.test(token)) out.push({ path: token.replace(/\/$/, ""), line: lineOf(text, m.index) });
  }
  return out;
}

/** The tests design.md §3 names: each list item's backticked `*.test.ts` path and the quoted names after it. */
function namedTests(text: string): Array<{ section: string; file: string; name: string; line: number }> {
  const start = text.search(/^## 3\. /m);
  const end = text.search(/^## 4\. /m);
  const out: Array<{ section: string; file: string; name: string; line: number }> = [];
  if (start < 0 || end < start) return out;
  let section = "3";
  let file: string | undefined;
  const lines = text.slice(start, end).split("\n");
  const firstLine = lineOf(text, start);
  lines.forEach((line, i) => {
    const heading = /^### (3\.\d+) /.exec(line);
    if (heading) section = heading[1]!;
    if (line.startsWith("- ")) file = undefined; // a new list item names its own file
    else if (!line.startsWith("  ")) return; // only list items and their continuation lines
    for (const m of line.matchAll(/`([^`\s]+\.test\.ts)`|"([^"]+)"/g)) {
      if (m[1] !== undefined) file = m[1];
      else if (file !== undefined) out.push({ section, file, name: m[2]!, line: firstLine + i });
    }
  });
  return out;
}

describe("docs/design.md", () => {
  const design = read(DESIGN);
  const sections = designSections(design);
  const files = textFiles();

  it("has the numbered sections the tree cites (§1–§7 and the guarantees §3.1–§3.6)", () => {
    for (const s of ["1", "2", "3", "4", "5", "6", "7", "3.1", "3.2", "3.3", "3.4", "3.5", "3.6"]) {
      expect(sections.has(s), `${DESIGN} has a section ${s}`).toBe(true);
    }
  });

  it("every docs/design.md §n citation in the tree names an existing section", () => {
    const all = files.flatMap((f) => citations(f, read(f)));
    expect(all.length, "citations found (the scan works)").toBeGreaterThan(30);
    const dangling = all.filter((c) => !sections.has(c.section)).map((c) => `${c.where}: §${c.section}`);
    expect(dangling, `citations of sections ${DESIGN} does not have`).toEqual([]);
  });

  it("no citation of a design document outside the repository is left", () => {
    const stale: string[] = [];
    for (const f of files) {
      const text = read(f);
      for (const m of text.matchAll(/\bDESIGN\s+§\d|\/work\/shared\/|\.\.\/shared\/DESIGN/g)) stale.push(`${f}:${lineOf(text, m.index)}: ${m[0]}`);
    }
    expect(stale, `cite ${DESIGN} §n instead`).toEqual([]);
  });

  it("relative links of README.md and docs/*.md point at files that exist", () => {
    const broken: string[] = [];
    for (const doc of markdownDocs()) {
      for (const { target, line } of relativeLinks(read(doc))) {
        if (target !== "" && !existsSync(resolve(root, dirname(doc), target))) broken.push(`${doc}:${line}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("backticked repository paths of README.md and docs/*.md exist", () => {
    const checked: string[] = [];
    const missing: string[] = [];
    for (const doc of markdownDocs()) {
      for (const { path, line } of backtickedPaths(read(doc))) {
        checked.push(path);
        if (!existsSync(join(root, path))) missing.push(`${doc}:${line}: ${path}`);
      }
    }
    expect(checked.length, "paths found (the scan works)").toBeGreaterThan(20);
    expect(missing).toEqual([]);
  });

  it("names, for every guarantee of §3, tests that exist in the files it names", () => {
    const named = namedTests(design);
    for (const s of ["3.1", "3.2", "3.3", "3.4", "3.5", "3.6"]) {
      expect(named.filter((t) => t.section === s).length, `§${s} names at least one test`).toBeGreaterThan(0);
    }
    const missing: string[] = [];
    for (const { file, name, line } of named) {
      if (!existsSync(join(root, file))) {
        missing.push(`${DESIGN}:${line}: ${file} does not exist`);
        continue;
      }
      const source = read(file);
      if (![`"${name}"`, `'${name}'`, `\`${name}\``].some((quoted) => source.includes(quoted))) {
        missing.push(`${DESIGN}:${line}: ${file} has no test "${name}"`);
      }
    }
    expect(missing).toEqual([]);
  });
});
