import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { JWT_SECRET_FILE_NAME } from "@proxyscale/core";

/**
 * The HS256 secret of an embedded install: read from `<dataDir>/jwt-secret`, or created there (mode 0600,
 * 48 random bytes, base64url) on first start. `created` tells the caller to print the first admin token.
 */
export function ensureSecretFile(dataDir: string): { secret: string; path: string; created: boolean } {
  const directory = resolve(dataDir);
  const path = join(directory, JWT_SECRET_FILE_NAME);
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  try {
    const secret = readFileSync(path, "utf8").trim();
    if (secret.length < 32)
      throw new Error(`${path} holds fewer than 32 characters; delete it to create a new one`);
    // Tighten a secret file someone copied in with looser permissions.
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    return { secret, path, created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const secret = randomBytes(48).toString("base64url");
  // `wx` fails if another process created the file in between; then its secret is the one to use.
  try {
    writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return ensureSecretFile(dataDir);
    throw error;
  }
  return { secret, path, created: true };
}
