import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { connect, createServer } from "node:net";
import { delimiter, join } from "node:path";
import {
  fillReplicaPlaceholders,
  type ResolvedReplicaTemplate,
  replicaPlaceholderValues,
} from "@proxyscale/core";
import { ActuatorError } from "../types.ts";

export interface TemplatePorts {
  port: number;
  metricsPort: number;
  exporterPort: number;
}
export type TemplatePortName = keyof TemplatePorts;

/**
 * A free port on 127.0.0.1, from the kernel (bind to 0, read it, let it go). Another process may take it before
 * the replica binds; the replica then fails its readiness probe or exits, and the scale fails with its stderr.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/** What a template replica needs before its process starts: its ports, its directory and its config file. */
export async function prepareTemplateReplica(input: {
  template: ResolvedReplicaTemplate;
  upstreamUrl: string;
  instance: string;
  dir: string;
}): Promise<{ ports: TemplatePorts; command: string[]; exporterCommand: string[] | undefined }> {
  const ports: TemplatePorts = {
    port: await freePort(),
    metricsPort: await freePort(),
    exporterPort: await freePort(),
  };
  const configFile = join(input.dir, input.template.configFileName);
  const values = replicaPlaceholderValues({ ...input, configFile, ...ports });
  // 0755: nginx started as root runs its workers as nobody, and they reach their temp paths through here.
  await mkdir(input.dir, { recursive: true, mode: 0o755 });
  await chmod(input.dir, 0o755);
  if (input.template.configTemplate !== undefined) {
    await writeFile(configFile, fillReplicaPlaceholders(input.template.configTemplate, values), {
      mode: 0o644,
    });
  }
  const fill = (argv: string[]) => argv.map((arg) => fillReplicaPlaceholders(arg, values));
  return {
    ports,
    command: fill(input.template.command),
    exporterCommand: input.template.exporter ? fill(input.template.exporter.command) : undefined,
  };
}

/**
 * Starts a program in its own process group (so SIGKILL reaches the children it forks, e.g. nginx's workers),
 * resolving once it runs, or failing with how to install it when the program is not there.
 */
export async function spawnProgram(
  argv: string[],
  options: { env: Record<string, string>; cwd: string },
): Promise<ChildProcess> {
  const [program, ...args] = argv as [string, ...string[]];
  const child = spawn(program, args, {
    env: options.env,
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (error: NodeJS.ErrnoException) => {
      const missing = error.code === "ENOENT" ? ` (is it installed? ${installHint(program)})` : "";
      reject(new ActuatorError("start_failed", `could not run ${program}: ${error.message}${missing}`));
    });
  });
  return child;
}

/** Where Debian puts daemons: not on every user's PATH. */
const SBIN_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/** The executable `name` on PATH or in an sbin directory, as an absolute path; undefined when there is none. */
export function findProgram(name: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of [...path.split(delimiter).filter(Boolean), ...SBIN_DIRS]) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here: the next directory.
    }
  }
  return undefined;
}

/** How to get a built-in template's program on Debian or Ubuntu. */
export function installHint(program: string): string {
  const base = program.split("/").pop() ?? program;
  return `on Debian or Ubuntu: apt-get install ${base}`;
}

/** SIGKILL to the process's whole group; a group already gone is fine. */
export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/**
 * One probe of a replica: an HTTP GET of `path` (answered below 400, or 503 when `draining` counts as alive) or a
 * TCP connect, on its own connection, within `timeoutMs`.
 */
export function probeOnce(
  probe: { kind: "http" | "tcp"; path: string; port: number; timeoutMs: number },
  options: { acceptUnavailable?: boolean } = {},
): Promise<boolean> {
  return new Promise((resolve) => {
    if (probe.kind === "tcp") {
      const socket = connect({ host: "127.0.0.1", port: probe.port, timeout: probe.timeoutMs });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("timeout", () => {
        socket.destroy();
        resolve(false);
      });
      socket.once("error", () => resolve(false));
      return;
    }
    const req = request(
      { host: "127.0.0.1", port: probe.port, path: probe.path, agent: false, timeout: probe.timeoutMs },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        res.on("end", () => resolve(status < 400 || (options.acceptUnavailable === true && status === 503)));
        res.on("error", () => resolve(false));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${probe.timeoutMs} ms`)));
    req.on("error", () => resolve(false));
    req.end();
  });
}

/** Probes every `periodMs` until one succeeds, or `isCancelled()` says to stop (resolving false). */
export async function probeUntilReady(
  probe: { kind: "http" | "tcp"; path: string; port: number; timeoutMs: number; periodMs: number },
  isCancelled: () => boolean,
): Promise<boolean> {
  while (!isCancelled()) {
    if (await probeOnce(probe)) return true;
    await new Promise((resolve) => setTimeout(resolve, probe.periodMs));
  }
  return false;
}
