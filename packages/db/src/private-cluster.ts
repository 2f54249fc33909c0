/**
 * A private PostgreSQL cluster for fault tests (`startPrivateCluster` from `@proxyscale/db/testing`): its own data
 * directory under the system temp dir, its own port (never 5432), its own unix socket directory, started with
 * `initdb` and `pg_ctl` as the `postgres` user when this process is root. A test may stop, freeze (SIGSTOP),
 * drop databases of, or kill this cluster; it never touches the shared server. Not part of the runtime API.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";

export interface PrivateClusterOptions {
  /** The database created at start, which `url` names (default `proxyscale`). */
  database?: string;
  /** Extra server settings, `-c name=value` each (e.g. `{ max_connections: "50" }`). */
  settings?: Record<string, string>;
}

export interface PrivateCluster {
  /** `postgres://postgres@127.0.0.1:<port>/<database>`: trust authentication, TCP on loopback. */
  readonly url: string;
  readonly port: number;
  readonly database: string;
  /** The temporary directory holding the data directory (`data`), the socket directory and the server log. */
  readonly dir: string;
  /** The URL of another database of this cluster (which `createDatabase` or the test made). */
  urlOf(database: string): string;
  createDatabase(name: string): Promise<string>;
  /** `DROP DATABASE … WITH (FORCE)`: its sessions are terminated, the cluster keeps running. Default: `database`. */
  dropDatabase(name?: string): Promise<void>;
  /** The postmaster's pid while it runs (read from postmaster.pid). */
  postmasterPid(): number;
  /**
   * SIGSTOP to the postmaster and every process it started (backends, checkpointer, walwriter, …): the kernel
   * still accepts TCP connections into the listen backlog and acknowledges what clients send, but nothing answers,
   * as with a hung host or a black-holed network.
   */
  freeze(): void;
  /** SIGCONT to every process `freeze` stopped. */
  thaw(): void;
  readonly frozen: boolean;
  /** Clean shutdown (`pg_ctl stop`, `fast` by default: sessions are terminated, then the server exits). */
  stop(mode?: "smart" | "fast" | "immediate"): Promise<void>;
  /** Starts the stopped cluster again, on the same port and data. */
  start(): Promise<void>;
  /** SIGKILL to the postmaster (its backends exit as they notice): a crash, no shutdown. */
  kill(): void;
  /**
   * Client sockets connected to this cluster that are still established (from /proc/net/tcp): e.g. 0 once a
   * client has given up on its connections to the frozen cluster, which cannot close its own ends.
   */
  establishedConnections(): number;
  /** The server log so far (for a failing test's message). */
  log(): string;
  /** Thaws, stops (immediately) and deletes the cluster. Safe to call twice; also runs at process exit. */
  dispose(): Promise<void>;
}

/** Directories of PostgreSQL's server binaries, newest version first, then PATH. PG_BIN overrides. */
function findBinary(name: string): string {
  const candidates: string[] = [];
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
  const debian = "/usr/lib/postgresql";
  if (existsSync(debian)) {
    for (const version of readdirSync(debian).sort((a, b) => Number(b) - Number(a))) {
      candidates.push(join(debian, version, "bin"));
    }
  }
  for (const dir of candidates) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  return name;
}

const isRoot = process.getuid?.() === 0;

/** PostgreSQL refuses to run as root: as root, commands run as the `postgres` user (runuser). */
function run(command: string, args: string[]): Promise<string> {
  const [file, argv] = isRoot ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
  return new Promise((resolve, reject) =>
    execFile(file, argv, { encoding: "utf8" }, (error, stdout, stderr) =>
      error
        ? reject(new Error(`${command} ${args.join(" ")} failed: ${error.message}\n${stderr}`))
        : resolve(stdout),
    ),
  );
}

/** A TCP port on 127.0.0.1 that was free a moment ago (never 5432, the shared PostgreSQL's). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => (port === 5432 ? freePort().then(resolve, reject) : resolve(port)));
    });
  });
}

/** Every live process whose parent is `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name is in parentheses and may hold spaces: the parent pid is the 2nd field after it.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

const live = new Set<PrivateCluster>();
let exitHookInstalled = false;

/** Last resort when a test process ends without dispose(): no cluster outlives it, frozen or not. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const cluster of live) {
      try {
        cluster.thaw();
        signal(cluster.postmasterPid(), "SIGQUIT");
      } catch {
        // Not running.
      }
      rmSync(cluster.dir, { recursive: true, force: true });
    }
  });
}

/**
 * Creates, starts and returns a private cluster with one database (`options.database`, default `proxyscale`).
 * Call `dispose()` in `afterAll` (and it is also run when the process exits).
 */
export async function startPrivateCluster(options: PrivateClusterOptions = {}): Promise<PrivateCluster> {
  const database = options.database ?? "proxyscale";
  const dir = mkdtempSync(join(tmpdir(), "proxyscale-pg-"));
  const dataDir = join(dir, "data");
  const logFile = join(dir, "server.log");
  if (isRoot) execFileSync("chown", ["postgres:postgres", dir]);
  const port = await freePort();
  const serverOptions = [
    `-p ${port}`,
    `-k ${dir}`,
    "-c listen_addresses=127.0.0.1",
    // A throwaway cluster: durability buys nothing and costs the 2-core machine's disk time.
    "-c fsync=off",
    "-c synchronous_commit=off",
    "-c full_page_writes=off",
    ...Object.entries(options.settings ?? {}).map(([name, value]) => `-c ${name}=${value}`),
  ].join(" ");
  const pgCtl = findBinary("pg_ctl");
  const startServer = () =>
    run(pgCtl, ["start", "-w", "-t", "60", "-D", dataDir, "-l", logFile, "-o", serverOptions]);
  const admin = (statement: string) => async () => {
    const client = postgres({
      host: "127.0.0.1",
      port,
      user: "postgres",
      database: "postgres",
      max: 1,
      onnotice: () => {},
    });
    try {
      await client.unsafe(statement);
    } finally {
      await client.end({ timeout: 1 });
    }
  };
  const urlOf = (name: string) => `postgres://postgres@127.0.0.1:${port}/${name}`;
  const stopped: number[] = [];
  let disposed = false;

  const cluster: PrivateCluster = {
    url: urlOf(database),
    port,
    database,
    dir,
    urlOf,
    async createDatabase(name) {
      await admin(`create database "${name.replace(/"/g, '""')}"`)();
      return urlOf(name);
    },
    dropDatabase(name = database) {
      return admin(`drop database if exists "${name.replace(/"/g, '""')}" with (force)`)();
    },
    postmasterPid() {
      const pidFile = join(dataDir, "postmaster.pid");
      // As root the file is the postgres user's, but root reads it anyway.
      const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster pid in ${pidFile}`);
      return pid;
    },
    freeze() {
      if (stopped.length > 0) return;
      const postmaster = cluster.postmasterPid();
      // The postmaster first, so it starts no process after the children were listed.
      signal(postmaster, "SIGSTOP");
      stopped.push(postmaster);
      for (const child of childrenOf(postmaster)) {
        signal(child, "SIGSTOP");
        stopped.push(child);
      }
    },
    thaw() {
      for (const pid of stopped.splice(0).reverse()) signal(pid, "SIGCONT");
    },
    get frozen() {
      return stopped.length > 0;
    },
    async stop(mode = "fast") {
      cluster.thaw();
      await run(pgCtl, ["stop", "-w", "-t", "60", "-m", mode, "-D", dataDir]);
    },
    async start() {
      await startServer();
    },
    kill() {
      cluster.thaw();
      signal(cluster.postmasterPid(), "SIGKILL");
    },
    establishedConnections() {
      const portHex = port.toString(16).toUpperCase().padStart(4, "0");
      let count = 0;
      for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
        if (!existsSync(table)) continue;
        for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
          const [, , remote, state] = line.trim().split(/\s+/);
          // State 01 is ESTABLISHED; a client's remote end is the cluster's port.
          if (state === "01" && remote?.endsWith(`:${portHex}`)) count += 1;
        }
      }
      return count;
    },
    log() {
      return existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      live.delete(cluster);
      cluster.thaw();
      if (existsSync(join(dataDir, "postmaster.pid"))) {
        await run(pgCtl, ["stop", "-w", "-t", "30", "-m", "immediate", "-D", dataDir]).catch(() => {
          signal(cluster.postmasterPid(), "SIGKILL");
        });
      }
      // Retried: a backend that was still exiting may create a file while the tree is deleted.
      rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
    },
  };

  live.add(cluster);
  installExitHook();
  try {
    await run(findBinary("initdb"), [
      "-D",
      dataDir,
      "-U",
      "postgres",
      "-A",
      "trust",
      "-E",
      "UTF8",
      "--no-sync",
      "--no-instructions",
    ]);
    await startServer();
    await cluster.createDatabase(database);
  } catch (error) {
    const log = cluster.log();
    await cluster.dispose();
    throw new Error(`private PostgreSQL cluster did not start: ${(error as Error).message}\n${log}`);
  }
  return cluster;
}
