import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { DataDirectoryInUseError } from "./errors.ts";

export const LOCK_FILE = "proxyscale.lock";

interface LockOwner {
  pid: number;
  hostname: string;
  /** The process's start time from /proc (Linux), so a reused PID is not taken for the owner. */
  startTime: string | null;
  lockedAt: string;
}

/** Directories this process holds: opening one twice in one process is refused like a second process is. */
const heldHere = new Set<string>();

function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name; starttime is field 22 (the 20th after it).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function ownerIsAlive(owner: LockOwner, dir: string): boolean {
  if (owner.hostname !== hostname()) return true; // Another machine on shared storage: cannot check, assume alive.
  if (owner.pid === process.pid) return heldHere.has(dir);
  if (!isAlive(owner.pid)) return false;
  const startTime = processStartTime(owner.pid);
  return owner.startTime === null || startTime === null || startTime === owner.startTime;
}

function readOwner(path: string): { text: string; owner: LockOwner | null } {
  const text = readFileSync(path, "utf8");
  try {
    return { text, owner: JSON.parse(text) as LockOwner };
  } catch {
    return { text, owner: null };
  }
}

/**
 * Takes the data directory for this process with a lock file (created with O_EXCL) naming the owner's PID.
 * A lock whose owner is dead (or whose file is unreadable) is stale and is replaced.
 */
export function lockDataDir(dataDir: string): { release(): void } {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  const owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    startTime: processStartTime(process.pid),
    lockedAt: new Date().toISOString(),
  };
  const content = JSON.stringify(owner);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, content);
      closeSync(fd);
      heldHere.add(dir);
      return {
        release() {
          heldHere.delete(dir);
          try {
            if (readFileSync(path, "utf8") === content) unlinkSync(path);
          } catch {
            // Already gone: nothing to release.
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    let existing: { text: string; owner: LockOwner | null };
    try {
      existing = readOwner(path);
    } catch {
      continue; // Removed between our open and read: try again.
    }
    if (existing.owner && ownerIsAlive(existing.owner, dir)) {
      throw new DataDirectoryInUseError(dir, existing.owner.pid);
    }
    // Stale: remove it only if it is still the file we judged, then retry the exclusive create.
    try {
      if (readFileSync(path, "utf8") === existing.text) unlinkSync(path);
    } catch {
      // Someone else removed it first.
    }
  }
  throw new DataDirectoryInUseError(dir, readOwner(path).owner?.pid ?? -1);
}
