import { spawn } from "node:child_process";
import { basename } from "node:path";
import type { CommandActuatorConfig } from "@proxyscale/core";
import type {
  Actuator,
  ActuatorDeps,
  ReplicaCounts,
  SetReplicasContext,
  SetReplicasResult,
} from "./types.ts";
import { ActuatorError, assertReplicaCount, throwIfAborted } from "./types.ts";

/** The only variables a command inherits from the server: never its secrets (JWT key, database URL). */
const INHERITED_ENV = ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"];
const STDOUT_LIMIT = 64 * 1024;
const STDERR_TAIL = 2 * 1024;
/** After the program exits, how long to wait for its pipes to close (a daemon it started may hold them). */
const PIPE_CLOSE_GRACE_MS = 1_000;

export interface CommandRunOptions {
  timeoutMs: number;
  killGraceMs: number;
  cwd?: string | undefined;
  env: Record<string, string>;
  signal?: AbortSignal | undefined;
}

/**
 * Runs argv without a shell, in its own process group. On timeout or abort the whole group gets SIGTERM,
 * then SIGKILL after the grace. Resolves with stdout on exit 0; rejects with the stderr tail otherwise.
 */
export function runCommand(argv: readonly string[], options: CommandRunOptions): Promise<{ stdout: string }> {
  const [program, ...args] = argv;
  const name = basename(program ?? "");
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(new ActuatorError("aborted", `command "${name}" was aborted`));
    const child = spawn(program ?? "", args, {
      shell: false,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      cwd: options.cwd,
      env: options.env,
    });
    let stdout = "";
    let stderr = "";
    let stopReason: "timeout" | "aborted" | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      if (stdout.length < STDOUT_LIMIT) stdout += chunk.slice(0, STDOUT_LIMIT - stdout.length);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL);
    });

    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // The group is already gone.
      }
    };
    const stop = (reason: "timeout" | "aborted") => {
      if (stopReason) return;
      stopReason = reason;
      killGroup("SIGTERM");
      killTimer = setTimeout(() => killGroup("SIGKILL"), options.killGraceMs);
      killTimer.unref();
    };
    const timeout = setTimeout(() => stop("timeout"), options.timeoutMs);
    const onAbort = () => stop("aborted");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timeout);
      options.signal?.removeEventListener("abort", onAbort);
    };

    child.on("error", (error: NodeJS.ErrnoException) => {
      cleanup();
      reject(
        new ActuatorError("command_failed", `could not start "${name}": ${error.code ?? error.message}`),
      );
    });
    child.on("exit", (code, signal) => {
      cleanup();
      // Let buffered output arrive, without waiting on pipes held open by a process the command started.
      const pipesClosed = new Promise<void>((done) => child.on("close", () => done()));
      const grace = new Promise<void>((done) => setTimeout(done, PIPE_CLOSE_GRACE_MS).unref());
      void Promise.race([pipesClosed, grace]).then(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        const tail = stderr.trim() ? `: ${stderr.trim()}` : "";
        if (stopReason === "timeout") {
          return reject(
            new ActuatorError("timeout", `command "${name}" timed out after ${options.timeoutMs} ms${tail}`, {
              retryable: true,
            }),
          );
        }
        if (stopReason === "aborted")
          return reject(new ActuatorError("aborted", `command "${name}" was aborted`));
        clearTimeout(killTimer);
        if (code === 0) return resolve({ stdout });
        const how = code === null ? `was killed by ${signal}` : `exited with code ${code}`;
        reject(new ActuatorError("command_failed", `command "${name}" ${how}${tail}`));
      });
    });
  });
}

/** Substitutes the known placeholders in each argument; every other character passes through literally. */
export function substitutePlaceholders(
  argv: readonly string[],
  values: Record<string, string | number>,
): string[] {
  return argv.map((arg) =>
    Object.entries(values).reduce(
      (result, [name, value]) => result.replaceAll(`{${name}}`, String(value)),
      arg,
    ),
  );
}

/** Runs a configured program with the replica count as an argument. For VMs and HAProxy or nginx fleets. */
export class CommandActuator implements Actuator {
  readonly kind = "command";
  private observedReplicas: number;

  constructor(
    private readonly config: CommandActuatorConfig,
    private readonly deps: ActuatorDeps,
  ) {
    this.observedReplicas = deps.initialReplicas ?? 0;
  }

  async getReplicas(): Promise<ReplicaCounts> {
    const replicas = this.config.getReplicasCommand
      ? await this.readReplicas(this.config.getReplicasCommand)
      : this.observedReplicas;
    return { replicas, readyReplicas: replicas, unhealthyReplicas: 0 };
  }

  async setReplicas(replicas: number, ctx: SetReplicasContext): Promise<SetReplicasResult> {
    assertReplicaCount(replicas);
    throwIfAborted(ctx.signal, "scale command");
    const argv = substitutePlaceholders(this.config.command, {
      replicas,
      fromReplicas: ctx.fromReplicas,
      proxyId: ctx.proxyId,
      eventId: ctx.eventId,
    });
    await runCommand(argv, this.runOptions(ctx.signal, this.eventEnv(replicas, ctx)));
    this.observedReplicas = this.config.getReplicasCommand
      ? await this.readReplicas(this.config.getReplicasCommand)
      : replicas;
    return { status: "completed", observedReplicas: this.observedReplicas };
  }

  async close(): Promise<void> {}

  private async readReplicas(argv: readonly string[]): Promise<number> {
    const { stdout } = await runCommand(
      argv,
      this.runOptions(undefined, { PROXYSCALE_PROXY_ID: this.deps.proxyId }),
    );
    const text = stdout.trim();
    if (!/^\d+$/.test(text)) {
      throw new ActuatorError(
        "bad_response",
        `getReplicasCommand "${basename(argv[0] ?? "")}" printed ${JSON.stringify(text.slice(0, 80))}, expected a whole number`,
      );
    }
    return Number(text);
  }

  private eventEnv(replicas: number, ctx: SetReplicasContext): Record<string, string> {
    return {
      PROXYSCALE_PROXY_ID: ctx.proxyId,
      PROXYSCALE_EVENT_ID: ctx.eventId,
      PROXYSCALE_FROM_REPLICAS: String(ctx.fromReplicas),
      PROXYSCALE_TO_REPLICAS: String(replicas),
    };
  }

  private runOptions(signal: AbortSignal | undefined, eventEnv: Record<string, string>): CommandRunOptions {
    const inherited = Object.fromEntries(
      INHERITED_ENV.flatMap((key) =>
        process.env[key] === undefined ? [] : [[key, process.env[key] as string]],
      ),
    );
    return {
      timeoutMs: this.config.timeoutMs,
      killGraceMs: this.config.killGraceMs,
      cwd: this.config.cwd,
      env: { ...inherited, ...this.config.env, ...eventEnv },
      signal,
    };
  }
}
