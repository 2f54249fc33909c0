import { readFileSync, writeFileSync } from "node:fs";
import { basename, extname, resolve } from "node:path";
import {
  COMPARED_METRICS,
  capacityModelSchema,
  policiesSchema,
  runSimulateRequest,
  type SimulationReport,
  simulateRequestSchema,
} from "@proxyscale/core";
import { SingleBar } from "cli-progress";
import { CliError, type Command, intFlag, numberFlag, parseCommand, UsageError } from "../command.ts";
import { fieldIssues, readDataFile, validate } from "../files.ts";
import { table } from "../format.ts";
import { simulationReportHtml } from "../report.ts";

/** `--json`'s shape: one entry per row (policies, HPA's defaults, the oracle) with its metrics. */
export function simulationJson(report: SimulationReport) {
  return {
    results: report.rows.map((row) => ({
      name: row.name,
      metrics: Object.fromEntries(COMPARED_METRICS.map((metric) => [metric, row.metrics[metric]])),
    })),
  };
}

function round(value: number): number {
  return Number(value.toFixed(2));
}

export function simulationTable(report: SimulationReport): string {
  return [
    `${report.steps} steps of ${report.stepSeconds} s; ${report.capacity}`,
    "",
    table(report.rows, [
      ["name", (row) => row.name],
      ["under %time", (row) => round(row.metrics.underProvisioningTimeshare)],
      ["over %time", (row) => round(row.metrics.overProvisioningTimeshare)],
      ["under acc %", (row) => round(row.metrics.underProvisioningAccuracy)],
      ["over acc %", (row) => round(row.metrics.overProvisioningAccuracy)],
      ["instability %", (row) => round(row.metrics.instability)],
      ["jitter /h", (row) => round(row.metrics.jitter)],
      ["actions", (row) => row.metrics.scalingActions],
      ["replica-h", (row) => round(row.metrics.replicaHours)],
      ["slo min", (row) => round(row.metrics.sloViolationMinutes)],
    ]),
  ].join("\n");
}

function readText(path: string): string {
  try {
    return readFileSync(resolve(path), "utf8");
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as Error).message}`);
  }
}

/** A policy file's row name: its file name without the extension. */
function policyName(path: string): string {
  return basename(path, extname(path));
}

/** A progress bar on stderr while the policies run, only when stderr is a terminal. */
function progress(total: number): { tick(done: number): void; stop(): void } {
  if (!process.stderr.isTTY) return { tick() {}, stop() {} };
  const bar = new SingleBar({
    stream: process.stderr,
    format: "simulating [{bar}] {value}/{total} policies",
  });
  bar.start(total, 0);
  return { tick: (done) => bar.update(done), stop: () => bar.stop() };
}

export const simulateCommand: Command = {
  name: "simulate",
  summary:
    "replay a trace through policies locally (no server), or a proxy's stored history on the server (--proxy)",
  usage:
    "--trace FILE --policy FILE [--policy FILE …] [--capacity FILE] [--initial-replicas N] [--warmup S] [--report FILE.html] | --proxy ID --from ISO --to ISO [--policy FILE …]",
  examples: [
    "proxyscale simulate --trace nasa.csv --policy balanced.yaml --policy aggressive.yaml",
    "proxyscale simulate --trace nasa.csv --policy p.yaml --capacity capacity.yaml --json",
    "proxyscale simulate --trace nasa.csv --policy p.yaml --report report.html",
    "proxyscale simulate --proxy 0b9c6f5e-6a58-4a8e-9a43-2f1f0f7c1f3e --from 2026-11-30T00:00:00Z --to 2026-12-01T00:00:00Z",
  ],
  async run(argv, env) {
    const { values, positionals, session } = parseCommand(
      argv,
      {
        trace: { type: "string" },
        policy: { type: "string", multiple: true },
        capacity: { type: "string" },
        "initial-replicas": { type: "string" },
        warmup: { type: "string" },
        report: { type: "string" },
        proxy: { type: "string" },
        from: { type: "string" },
        to: { type: "string" },
      },
      env,
    );
    if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals.join(" ")}`);
    const policies = (values.policy ?? []).map((path) => ({
      name: policyName(path),
      policy: readDataFile(path),
    }));
    const capacity =
      values.capacity === undefined
        ? undefined
        : validate(
            capacityModelSchema,
            readDataFile(values.capacity),
            `${values.capacity}: invalid capacity model`,
          );
    const initialReplicas = intFlag(values["initial-replicas"], "initial-replicas", { min: 0 });
    const warmupSeconds = numberFlag(values.warmup, "warmup");
    const options = {
      ...(capacity === undefined ? {} : { capacity }),
      ...(initialReplicas === undefined ? {} : { initialReplicas }),
      ...(warmupSeconds === undefined ? {} : { warmupSeconds }),
    };

    let report: SimulationReport;
    if (values.proxy !== undefined) {
      if (values.trace !== undefined) throw new UsageError("give either --trace or --proxy, not both");
      const time = (value: string | undefined, flag: string) => {
        const ms = value === undefined ? Number.NaN : Date.parse(value);
        if (Number.isNaN(ms))
          throw new UsageError(`--${flag} must be an ISO 8601 time, got ${value ?? "nothing"}`);
        return ms;
      };
      report = await session.client().scaling.simulateHistory.mutate({
        proxyId: values.proxy,
        from: time(values.from, "from"),
        to: time(values.to, "to"),
        ...(policies.length > 0
          ? { policies: validate(policiesSchema, policies, "invalid --policy files") }
          : {}),
        ...options,
      });
    } else {
      if (values.trace === undefined) throw new UsageError("missing --trace FILE (or --proxy ID)");
      if (policies.length === 0) throw new UsageError("give at least one --policy FILE");
      const parsed = simulateRequestSchema.safeParse({ trace: readText(values.trace), policies, ...options });
      if (!parsed.success) {
        const files = [values.trace, ...(values.policy ?? [])];
        throw new CliError(
          `invalid simulation input (${files.join(", ")})`,
          fieldIssues(parsed.error).map((issue) => ({
            ...issue,
            field: issue.field.replace(
              /^policies\.(\d+)(\.policy)?\.?/,
              (_, i: string) => `${files[Number(i) + 1]}: `,
            ),
          })),
        );
      }
      const bar = progress(parsed.data.policies.length);
      try {
        report = runSimulateRequest(parsed.data, (done) => bar.tick(done));
      } finally {
        bar.stop();
      }
    }
    if (values.report !== undefined) {
      writeFileSync(resolve(values.report), simulationReportHtml(report, "ProxyScale simulation"));
    }
    return { data: simulationJson(report), text: simulationTable(report) };
  },
};
