import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CommandActuatorConfig, parseActuatorConfig } from "@proxyscale/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActuatorError, CommandActuator } from "../../src/actuators/index.ts";
import { isAlive } from "./processes.ts";

const node = process.execPath;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "proxyscale-command-"));
  // Records the argv and the event env it was run with, then exits with the code in EXIT_CODE.
  writeFileSync(
    join(dir, "record.mjs"),
    `import { writeFileSync } from "node:fs";
const [out, ...args] = process.argv.slice(2);
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key.startsWith("PROXYSCALE_") || key === "EXTRA" || key === "SECRET_IN_SERVER"));
writeFileSync(out, JSON.stringify({ args, env }));
process.stderr.write("line one\\nfinal complaint\\n");
process.exit(Number(process.env.EXIT_CODE ?? 0));
`,
  );
  // Starts a grandchild in the same process group, tagged with argv[2] so the test can find it, then hangs.
  writeFileSync(
    join(dir, "hang.mjs"),
    `import { spawn } from "node:child_process";
spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", process.argv[2]], { stdio: "ignore" });
setInterval(() => {}, 1000);
`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A signalled process takes a moment to die; a started one a moment to show up. */
const WAIT = { timeout: 3_000, interval: 25 };

function command(overrides: Record<string, unknown>): CommandActuator {
  const config = parseActuatorConfig({ kind: "command", ...overrides }) as CommandActuatorConfig;
  return new CommandActuator(config, { proxyId: "edge", initialReplicas: 2 });
}

const ctx = { proxyId: "edge", eventId: "evt-1", fromReplicas: 2 };

describe("command actuator", () => {
  it("passes arguments with spaces and shell metacharacters to the program literally", async () => {
    const out = join(dir, "literal.json");
    const canary = join(dir, "pwned");
    const tricky = [
      "{replicas}",
      "two words",
      `$(touch ${canary})`,
      `; touch ${canary}`,
      "`id`",
      "*",
      "'quoted' \"double\"",
      "a\nnewline",
      "--to={replicas} from={fromReplicas}",
      "{proxyId}/{eventId}",
      "{unknown}",
    ];
    const actuator = command({ command: [node, join(dir, "record.mjs"), out, ...tricky] });
    await expect(actuator.setReplicas(5, ctx)).resolves.toEqual({ status: "completed", observedReplicas: 5 });
    const recorded = JSON.parse(readFileSync(out, "utf8"));
    expect(recorded.args).toEqual([
      "5",
      "two words",
      `$(touch ${canary})`,
      `; touch ${canary}`,
      "`id`",
      "*",
      "'quoted' \"double\"",
      "a\nnewline",
      "--to=5 from=2",
      "edge/evt-1",
      "{unknown}",
    ]);
    expect(existsSync(canary)).toBe(false);
    expect(await actuator.getReplicas()).toEqual({ replicas: 5, readyReplicas: 5, unhealthyReplicas: 0 });
  });

  it("gives the event in env vars and keeps the server's other variables out", async () => {
    const out = join(dir, "env.json");
    process.env.SECRET_IN_SERVER = "do-not-leak";
    try {
      const actuator = command({
        command: [node, join(dir, "record.mjs"), out, "{replicas}"],
        env: { EXTRA: "x" },
      });
      await actuator.setReplicas(3, ctx);
    } finally {
      delete process.env.SECRET_IN_SERVER;
    }
    expect(JSON.parse(readFileSync(out, "utf8")).env).toEqual({
      PROXYSCALE_PROXY_ID: "edge",
      PROXYSCALE_EVENT_ID: "evt-1",
      PROXYSCALE_FROM_REPLICAS: "2",
      PROXYSCALE_TO_REPLICAS: "3",
      EXTRA: "x",
    });
  });

  it("fails on a non-zero exit with the code and the stderr tail, keeping the old count", async () => {
    const actuator = command({
      command: [node, join(dir, "record.mjs"), join(dir, "fail.json"), "{replicas}"],
      env: { EXIT_CODE: "3" },
    });
    const error = await actuator.setReplicas(4, ctx).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ActuatorError);
    expect(error).toMatchObject({
      code: "command_failed",
      message: 'command "node" exited with code 3: line one\nfinal complaint',
    });
    expect(await actuator.getReplicas()).toMatchObject({ replicas: 2 });
  });

  it("kills the whole process group on timeout", async () => {
    const marker = `grandchild-${process.pid}-timeout`;
    const actuator = command({
      command: [node, join(dir, "hang.mjs"), marker, "{replicas}"],
      timeoutMs: 500,
      killGraceMs: 200,
    });
    const started = Date.now();
    const error = await actuator.setReplicas(4, ctx).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "timeout", message: 'command "node" timed out after 500 ms' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    await expect.poll(() => findProcesses(marker), WAIT).toEqual([]);
  });

  it("stops the command when the caller aborts", async () => {
    const marker = `grandchild-${process.pid}-abort`;
    const actuator = command({
      command: [node, join(dir, "hang.mjs"), marker, "{replicas}"],
      timeoutMs: 30_000,
    });
    const controller = new AbortController();
    const outcome = actuator
      .setReplicas(4, { ...ctx, signal: controller.signal })
      .catch((caught: unknown) => caught);
    // Aborted while the command runs: once it and its grandchild (both carry the marker) are up.
    await expect.poll(() => findProcesses(marker).length, { ...WAIT, timeout: 20_000 }).toBe(2);
    controller.abort();
    expect(await outcome).toMatchObject({ code: "aborted" });
    await expect.poll(() => findProcesses(marker), WAIT).toEqual([]);
  });

  it("reads the observed count from getReplicasCommand's stdout", async () => {
    const state = join(dir, "count.txt");
    writeFileSync(state, "7\n");
    const actuator = command({
      command: [
        node,
        "-e",
        "require('fs').writeFileSync(process.argv[1], process.argv[2] + '\\n')",
        state,
        "{replicas}",
      ],
      getReplicasCommand: [
        node,
        "-e",
        "process.stdout.write(require('fs').readFileSync(process.argv[1]))",
        state,
      ],
    });
    expect(await actuator.getReplicas()).toEqual({ replicas: 7, readyReplicas: 7, unhealthyReplicas: 0 });
    await expect(actuator.setReplicas(9, ctx)).resolves.toEqual({ status: "completed", observedReplicas: 9 });
    expect(readFileSync(state, "utf8")).toBe("9\n");
  });

  it("rejects getReplicasCommand output that is not a whole number", async () => {
    const actuator = command({
      command: [node, "-e", "", "{replicas}"],
      getReplicasCommand: [node, "-e", "console.log('three')"],
    });
    await expect(actuator.getReplicas()).rejects.toMatchObject({
      code: "bad_response",
      message: 'getReplicasCommand "node" printed "three", expected a whole number',
    });
  });

  it("names a program that cannot be started", async () => {
    const actuator = command({ command: [join(dir, "no-such-program"), "{replicas}"] });
    await expect(actuator.setReplicas(1, ctx)).rejects.toMatchObject({
      code: "command_failed",
      message: 'could not start "no-such-program": ENOENT',
    });
  });
});

/** Live processes whose command line contains `needle` (read from /proc). */
function findProcesses(needle: string): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(needle) && isAlive(Number(pid));
      } catch {
        return false;
      }
    })
    .map(Number);
}
