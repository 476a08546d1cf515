// GET /: the dashboard — static files from gateways/http/dashboard (plain ES modules, no build step)
// and uPlot's browser build from node_modules at /assets/uplot/. The page logs in with an API key kept
// in the tab (sessionStorage) and sends it in Authorization headers only, so keys never appear in URLs,
// access logs or browser history. Strict CSP: nothing but this origin's scripts, styles and requests.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply } from "fastify";

/** Where the dashboard's files are. */
export const DASHBOARD_DIR = fileURLToPath(new URL("../dashboard/", import.meta.url));

/** uPlot's dist folder (its package has no `exports`, so its main file resolves). */
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve("uplot"));

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // uPlot sets inline style attributes on its elements
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join("; ");

function securityHeaders(reply: FastifyReply): void {
  reply.header("content-security-policy", CSP);
  reply.header("x-content-type-options", "nosniff");
  reply.header("referrer-policy", "no-referrer");
  // files change with the gateway's version: revalidate (ETag) rather than cache blindly
  reply.header("cache-control", "no-cache");
}

export async function registerDashboardRoutes(app: FastifyInstance): Promise<void> {
  // wildcard: false registers a route per file found at start, so unknown paths still reach the
  // API's 404 handler (with the error shape) instead of the plugin's
  await app.register(fastifyStatic, {
    root: DASHBOARD_DIR,
    prefix: "/",
    wildcard: false,
    index: "index.html",
    schemaHide: true,
    cacheControl: false,
    setHeaders: securityHeaders,
  });
  await app.register(fastifyStatic, {
    root: UPLOT_DIR,
    prefix: "/assets/uplot/",
    wildcard: false,
    decorateReply: false,
    schemaHide: true,
    cacheControl: false,
    allowedPath: (path) => path === "/uPlot.esm.js" || path === "/uPlot.min.css",
    setHeaders: securityHeaders,
  });
}

/** The files the dashboard serves (for tests). */
export const dashboardFile = (name: string): string => join(DASHBOARD_DIR, name);
