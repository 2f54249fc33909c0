import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { adminBuildIsStale } from "../../../scripts/admin-build.mjs";

const directories: string[] = [];
const touch = (path: string, at: number) => utimesSync(path, at, at);
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

/** An admin app in a temp dir, every file dated `at` (seconds since the epoch). */
function adminApp(at: number, options: { built?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "proxyscale-admin-"));
  directories.push(dir);
  const files = ["package.json", "index.html", "vite.config.ts", "src/main.tsx", "src/pages/Fleet.tsx"];
  if (options.built ?? true) files.push("dist/index.html");
  for (const file of files) {
    mkdirSync(join(dir, file, ".."), { recursive: true });
    writeFileSync(join(dir, file), "x");
    utimesSync(join(dir, file), at, at);
  }
  // Directories too: a deleted source changes its directory's time, which counts.
  for (const sub of ["src/pages", "src", "dist"])
    if (options.built !== false || sub !== "dist") touch(join(dir, sub), at);
  return dir;
}

describe("npm start's admin build check", () => {
  it("skips when there is no admin app", () => {
    expect(adminBuildIsStale(join(tmpdir(), "no-such-admin-app"))).toBe(false);
  });

  it("builds when dist/index.html is missing", () => {
    expect(adminBuildIsStale(adminApp(1_000, { built: false }))).toBe(true);
  });

  it("rebuilds when a source was deleted (its directory is newer than the build)", () => {
    const dir = adminApp(1_000);
    touch(join(dir, "dist", "index.html"), 2_000);
    rmSync(join(dir, "src", "pages", "Fleet.tsx"));
    expect(adminBuildIsStale(dir)).toBe(true);
  });

  it("keeps a build newer than every source", () => {
    const dir = adminApp(1_000);
    touch(join(dir, "dist", "index.html"), 2_000);
    expect(adminBuildIsStale(dir)).toBe(false);
  });

  it.each(["src/pages/Fleet.tsx", "index.html", "vite.config.ts", "package.json"])(
    "rebuilds when %s is newer than the build",
    (file) => {
      const dir = adminApp(1_000);
      touch(join(dir, "dist", "index.html"), 2_000);
      touch(join(dir, file), 3_000);
      expect(adminBuildIsStale(dir)).toBe(true);
    },
  );

  it("rebuilds when core's sources, which the UI bundles, are newer", () => {
    const dir = adminApp(1_000);
    touch(join(dir, "dist", "index.html"), 2_000);
    const core = mkdtempSync(join(tmpdir(), "proxyscale-core-"));
    directories.push(core);
    writeFileSync(join(core, "policy.ts"), "x");
    touch(join(core, "policy.ts"), 3_000);
    touch(core, 1_000);
    expect(adminBuildIsStale(dir, core)).toBe(true);
  });
});
