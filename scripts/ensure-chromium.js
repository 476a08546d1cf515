#!/usr/bin/env node
// Makes sure Chromium is installed before `npm test` (its pre-script runs this): the dashboard's
// end-to-end test drives a real headless Chromium through playwright-core. Found (AIRTWIN_CHROMIUM,
// PATH: chromium, chromium-browser) and runs --version: exit 0. Missing, as root on Debian/Ubuntu:
// `apt-get install chromium`. Otherwise: exit 1 saying what to install. Lookup order matches
// test/harness/chromium.ts.

import { ensureBinary } from "./ensure-binary.js";

ensureBinary({
  tag: "ensure-chromium",
  what: "chromium",
  names: ["chromium", "chromium-browser"],
  envVar: "AIRTWIN_CHROMIUM",
  extraDirs: ["/usr/bin", "/usr/local/bin"],
  aptPackage: "chromium",
  hint: [
    "The dashboard's end-to-end test (npm test) drives a headless Chromium. Install it with one of:",
    "  sudo apt-get install chromium                (Debian 12+; then it is /usr/bin/chromium)",
    "  AIRTWIN_CHROMIUM=/path/to/chromium-or-chrome (use a Chromium or Chrome binary anywhere)",
  ].join("\n"),
});
