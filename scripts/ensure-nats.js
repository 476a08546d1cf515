#!/usr/bin/env node
// Makes sure nats-server is installed before `npm test` and `npm start` (their pre-scripts run this).
// Found (AIRTWIN_NATS_SERVER, PATH, /usr/sbin, /usr/local/bin, /usr/local/sbin) and runs --version:
// exit 0. Missing, as root on Debian/Ubuntu: `apt-get install -y nats-server` (`apt-get update` first
// only if that fails). Otherwise: exit 1 saying what to install. Lookup order matches deploy/local-nats.ts.

import { ensureBinary } from "./ensure-binary.js";

ensureBinary({
  tag: "ensure-nats",
  what: "nats-server",
  names: ["nats-server"],
  envVar: "AIRTWIN_NATS_SERVER",
  extraDirs: ["/usr/sbin", "/usr/local/bin", "/usr/local/sbin"],
  aptPackage: "nats-server",
  hint: [
    "airtwin needs nats-server (2.9 or later) for `npm start` and `npm test`. Install it with one of:",
    "  sudo apt-get install nats-server            (Debian 12+/Ubuntu; then it is /usr/sbin/nats-server)",
    "  a release from https://github.com/nats-io/nats-server/releases, with `nats-server` on PATH",
    "  AIRTWIN_NATS_SERVER=/path/to/nats-server     (use a binary anywhere)",
  ].join("\n"),
});
