#!/usr/bin/env node
// Runs pnpm with the given arguments after making sure the toolchain and the
// dependencies are in place, so `npm start` and `npm test` work on a machine
// that has only Node and npm.
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const PNPM_VERSION = "12.4.2";
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const localPnpm = join(root, ".tools", "node_modules", ".bin", "pnpm");

function versionOf(command) {
  const result = spawnSync(command, ["--version"], { encoding: "utf8", shell: process.platform === "win32" });
  return result.status === 0 ? result.stdout.trim() : null;
}

function findPnpm() {
  if (versionOf("pnpm") === PNPM_VERSION) return "pnpm";
  if (existsSync(localPnpm) && versionOf(localPnpm) === PNPM_VERSION) return localPnpm;
  console.error(
    `[proxyscale] installing pnpm ${PNPM_VERSION} into .tools/ (corepack is not used: it fails on some registries)`,
  );
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
    console.error("[proxyscale] could not install pnpm; install it with: npm i -g pnpm@" + PNPM_VERSION);
    process.exit(1);
  }
  return localPnpm;
}

function dependenciesAreCurrent() {
  const marker = join(root, "node_modules", ".modules.yaml");
  const lockfile = join(root, "pnpm-lock.yaml");
  if (!existsSync(marker)) return false;
  return !existsSync(lockfile) || statSync(lockfile).mtimeMs <= statSync(marker).mtimeMs;
}

const pnpm = findPnpm();
if (!dependenciesAreCurrent()) {
  console.error("[proxyscale] installing dependencies with pnpm");
  const install = spawnSync(pnpm, ["install", "--frozen-lockfile"], { stdio: "inherit", cwd: root });
  if (install.status !== 0) process.exit(install.status ?? 1);
}

const run = spawnSync(pnpm, process.argv.slice(2), { stdio: "inherit", cwd: root });
if (run.signal) process.kill(process.pid, run.signal);
process.exit(run.status ?? 1);
