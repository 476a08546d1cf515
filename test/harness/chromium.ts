// Headless Chromium for browser tests: Debian's `chromium` (or AIRTWIN_CHROMIUM) driven by
// playwright-core, with the flags this machine needs (no sandbox as root, no GPU, no background
// networking: the network is closed and Chromium's own connections would be refused) and a fresh
// profile per launch. Lookup order matches scripts/ensure-chromium.js, which installs it for npm test.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { isExecutableFile } from "../../deploy/local-nats.ts";

export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
] as const;

/** The Chromium binary: AIRTWIN_CHROMIUM, else `chromium` / `chromium-browser` on PATH or in /usr/bin. */
export function resolveChromium(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.AIRTWIN_CHROMIUM?.trim();
  if (explicit) {
    if (isExecutableFile(resolve(explicit))) return resolve(explicit);
    throw new Error(`AIRTWIN_CHROMIUM=${explicit} is not an executable file`);
  }
  const dirs = [...(env.PATH ?? "").split(delimiter).filter(Boolean), "/usr/bin", "/usr/local/bin"];
  for (const name of ["chromium", "chromium-browser"]) {
    const found = dirs.map((d) => join(d, name)).find(isExecutableFile);
    if (found) return found;
  }
  throw new Error("chromium not found: `sudo apt-get install chromium` (npm test's pre-script does it as root), or set AIRTWIN_CHROMIUM");
}

/** A browser with a fresh profile; closing it removes the profile. */
export interface TestBrowser extends AsyncDisposable {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(o: { viewport?: { width: number; height: number } } = {}): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), "airtwin-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: resolveChromium(),
    headless: true,
    args: [...CHROMIUM_FLAGS],
    viewport: o.viewport ?? { width: 1400, height: 1000 },
  });
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    })());
  return { context, close, [Symbol.asyncDispose]: close };
}
