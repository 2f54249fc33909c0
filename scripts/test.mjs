#!/usr/bin/env node
// Runs every package's tests through turbo, then prints one closing line with the totals
// read from each package's vitest JSON report.
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ensureToolchain, root, runPnpm } from "./toolchain.mjs";

const reportPaths = ["packages", "apps"].flatMap((group) =>
  existsSync(join(root, group))
    ? readdirSync(join(root, group)).map((name) => join(root, group, name, ".vitest", "report.json"))
    : [],
);
for (const path of reportPaths) rmSync(path, { force: true });

const status = await runPnpm(ensureToolchain(), [
  "exec",
  "turbo",
  "run",
  "test",
  "--concurrency=1",
  ...process.argv.slice(2),
]);

const totals = { passed: 0, failed: 0, skipped: 0 };
for (const path of reportPaths.filter((p) => existsSync(p))) {
  const report = JSON.parse(readFileSync(path, "utf8"));
  totals.passed += report.numPassedTests;
  totals.failed += report.numFailedTests;
  totals.skipped += report.numPendingTests + (report.numTodoTests ?? 0);
}
if (status !== 0 && totals.failed === 0) totals.failed = 1; // a suite that crashed before reporting still fails
console.log(`\ntests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(status);
