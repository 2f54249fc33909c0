// Makes sure pnpm and the workspace's dependencies are in place, so `npm start` and `npm test`
// work on a machine that has only Node and npm.
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const PNPM_VERSION = "12.4.2";
export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const localPnpm = join(root, ".tools", "node_modules", ".bin", "pnpm");

function versionOf(command) {
  const result = spawnSync(command, ["--version"], { encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim() : null;
}

function findOrInstallPnpm() {
  if (versionOf("pnpm") === PNPM_VERSION) return "pnpm";
  if (existsSync(localPnpm) && versionOf(localPnpm) === PNPM_VERSION) return localPnpm;
  // Not corepack: it fails on this registry's signatures.
  console.error(`[proxyscale] installing pnpm ${PNPM_VERSION} into .tools/`);
  const install = spawnSync(
    "npm",
    ["install", "--prefix", join(root, ".tools"), "--no-save", "--no-audit", "--no-fund", `pnpm@${PNPM_VERSION}`],
    { stdio: "inherit", cwd: root },
  );
  if (install.status !== 0 || versionOf(localPnpm) !== PNPM_VERSION) {
    console.error(`[proxyscale] could not install pnpm; install it with: npm i -g pnpm@${PNPM_VERSION}`);
    process.exit(1);
  }
  return localPnpm;
}

function dependenciesAreCurrent() {
  const marker = join(root, "node_modules", ".modules.yaml");
  const lockfile = join(root, "pnpm-lock.yaml");
  if (!existsSync(marker)) return false;
  return statSync(lockfile).mtimeMs <= statSync(marker).mtimeMs;
}

/** Returns the pnpm executable after installing pnpm and the dependencies when they are missing. */
export function ensureToolchain() {
  const pnpm = findOrInstallPnpm();
  if (!dependenciesAreCurrent()) {
    console.error("[proxyscale] installing dependencies with pnpm");
    const install = spawnSync(pnpm, ["install", "--frozen-lockfile"], { stdio: "inherit", cwd: root });
    if (install.status !== 0) process.exit(install.status ?? 1);
  }
  return pnpm;
}

/** Runs pnpm with `args` in the workspace root and returns its exit status. */
export function runPnpm(pnpm, args) {
  const run = spawnSync(pnpm, args, { stdio: "inherit", cwd: root });
  if (run.signal) process.kill(process.pid, run.signal);
  return run.status ?? 1;
}
