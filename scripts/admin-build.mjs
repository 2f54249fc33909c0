// The admin UI's production build (apps/admin/dist), made before `npm start` runs the server when it is missing
// or older than what it is built from, so a first start serves the UI.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const CONFIG_FILES = ["index.html", "package.json", "vite.config.ts", "vite.config.mts", "vite.config.js"];

/** Newest modification time of `path`, or of any file under it. 0 when it does not exist. */
function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(path, { recursive: true })) {
    newest = Math.max(newest, statSync(join(path, String(entry))).mtimeMs);
  }
  return newest;
}

/**
 * Whether `adminDir`'s build is missing or older than its sources: src/, index.html, the vite config,
 * package.json, and core's sources (`coreSrc`), which the UI bundles. False when there is no admin app.
 */
export function adminBuildIsStale(adminDir, coreSrc) {
  if (!existsSync(join(adminDir, "package.json"))) return false;
  const built = join(adminDir, "dist", "index.html");
  if (!existsSync(built)) return true;
  const sources = [join(adminDir, "src"), ...CONFIG_FILES.map((file) => join(adminDir, file))];
  if (coreSrc) sources.push(coreSrc);
  const builtAt = statSync(built).mtimeMs;
  return sources.some((source) => newestMtime(source) > builtAt);
}

/**
 * Builds the admin UI with its `build` script when it is stale. A failed build is reported and the server still
 * starts (its API does not need the UI).
 */
export function ensureAdminBuild(pnpm, root) {
  const adminDir = join(root, "apps", "admin");
  if (!adminBuildIsStale(adminDir, join(root, "packages", "core", "src"))) return;
  console.error("[proxyscale] building the admin UI (apps/admin: vite build)");
  const build = spawnSync(pnpm, ["--filter", "@proxyscale/admin", "run", "build"], {
    stdio: "inherit",
    cwd: root,
  });
  if (build.status !== 0)
    console.error("[proxyscale] the admin UI did not build; the server starts without it (see above)");
}
