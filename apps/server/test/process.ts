/**
 * The real server (`src/main.ts`) in a process of its own, for tests that signal it, take its database away, or
 * time its exit. Node runs main.ts through tsx's loader (not the tsx CLI, which forks): the child's pid is the
 * server's, so signals reach it directly.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const serverDir = fileURLToPath(new URL("..", import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  /** The URL it printed ("ProxyScale is running at …"). */
  url: string;
  /** Everything it wrote so far (stdout holds the JSON log lines). */
  output(): { stdout: string; stderr: string };
  /** Its JSON log lines so far, parsed. */
  logs(): Array<Record<string, unknown> & { msg?: string }>;
  /** Resolves when it has exited, with its code (null when a signal ended it) and performance.now() then. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** SIGKILL if it still runs, and deletes its data directory. */
  dispose(): Promise<void>;
}

/**
 * Starts main.ts with only `env` (plus PATH and HOME: nothing of this shell's ProxyScale or database settings) and
 * resolves once it serves. PORT defaults to 0, the demo to off, the data directory to a new temporary one.
 */
export async function startServerProcess(
  env: Record<string, string>,
  options: { readyTimeoutMs?: number } = {},
): Promise<ServerProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), "proxyscale-process-"));
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: serverDir,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: "0",
      PROXYSCALE_DEMO: "0",
      PROXYSCALE_DATA_DIR: dataDir,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  const dispose = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the server did not start in time:\n${stdout}\n${stderr}`)),
      options.readyTimeoutMs ?? 60_000,
    );
    const look = () => {
      const match = /ProxyScale is running at (http:\/\/\S+)/.exec(stdout);
      if (!match) return;
      clearTimeout(timer);
      child.stdout?.off("data", look);
      resolve(match[1]!);
    };
    child.stdout?.on("data", look);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before serving:\n${stdout}\n${stderr}`));
    });
  }).catch(async (error: unknown) => {
    await dispose();
    throw error;
  });
  return {
    child,
    url,
    output: () => ({ stdout, stderr }),
    logs: () =>
      stdout.split("\n").flatMap((line) => {
        if (!line.startsWith("{")) return [];
        try {
          return [JSON.parse(line) as Record<string, unknown> & { msg?: string }];
        } catch {
          return [];
        }
      }),
    exited,
    dispose,
  };
}
