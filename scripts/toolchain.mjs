// Makes sure pnpm and the workspace's dependencies are in place, so `npm start` and `npm test`
// work on a machine that has only Node and npm.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { constants } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const PNPM_VERSION = "12.4.2";
export const root = join(dirname(fileURLToPath(import.meta.url)), "..");

// Turbo's telemetry would try the network on every run; nothing here needs it.
process.env.TURBO_TELEMETRY_DISABLED ??= "1";
const localPnpm = join(root, ".tools", "node_modules", ".bin", "pnpm");

function versionOf(command) {
  const result = spawnSync(command, ["--version"], { encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim() : null;
}

// Tools that pnpm runs look pnpm up on PATH (turbo does, to run tasks), so a local pnpm goes on it.
function useLocalPnpm() {
  process.env.PATH = `${dirname(localPnpm)}${delimiter}${process.env.PATH ?? ""}`;
  return localPnpm;
}

function findOrInstallPnpm() {
  if (versionOf("pnpm") === PNPM_VERSION) return "pnpm";
  if (existsSync(localPnpm) && versionOf(localPnpm) === PNPM_VERSION) return useLocalPnpm();
  // Not corepack: it fails on this registry's signatures.
  console.error(`[proxyscale] installing pnpm ${PNPM_VERSION} into .tools/`);
  const install = spawnSync(
    "npm",
    [
      "install",
      "--prefix",
      join(root, ".tools"),
      "--no-save",
      "--no-audit",
      "--no-fund",
      `pnpm@${PNPM_VERSION}`,
    ],
    { stdio: "inherit", cwd: root },
  );
  if (install.status !== 0 || versionOf(localPnpm) !== PNPM_VERSION) {
    console.error(`[proxyscale] could not install pnpm; install it with: npm i -g pnpm@${PNPM_VERSION}`);
    process.exit(1);
  }
  return useLocalPnpm();
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

/**
 * Runs `command` and resolves to its exit status. SIGINT and SIGTERM are passed on, so a supervisor stopping
 * the wrapper stops the child too (and the server gets its graceful shutdown).
 */
export function runForwardingSignals(command, args, cwd = root) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: "inherit", cwd });
    const forward = (signal) => child.kill(signal);
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    child.on("exit", (code, signal) => {
      process.off("SIGINT", forward);
      process.off("SIGTERM", forward);
      resolve(code ?? 128 + (constants.signals[signal] ?? 0));
    });
  });
}

/** Runs pnpm with `args` in the workspace root and resolves to its exit status. */
export function runPnpm(pnpm, args) {
  return runForwardingSignals(pnpm, args);
}
