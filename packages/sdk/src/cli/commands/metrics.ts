import { type LoadMetrics, loadMetricsSchema } from "@proxyscale/core";
import { z } from "zod";
import { allLatestSamples } from "../../client.ts";
import {
  CliError,
  type Command,
  intFlag,
  numberFlag,
  onePositional,
  parseCommand,
  UsageError,
} from "../command.ts";
import { fieldIssues, readDataFile, validate } from "../files.ts";
import { table, time } from "../format.ts";

/** Flags for one sample, by the field each fills. */
const SAMPLE_FLAGS = {
  cpu: "cpuPercent",
  memory: "memoryPercent",
  "request-rate": "requestRate",
  latency: "avgLatencyMs",
  "error-rate": "errorRatePercent",
  replicas: "replicas",
  unhealthy: "unhealthyReplicas",
} as const;

const OPTIONS = {
  ...Object.fromEntries(Object.keys(SAMPLE_FLAGS).map((flag) => [flag, { type: "string" as const }])),
  instance: { type: "string" },
  custom: { type: "string", multiple: true },
  file: { type: "string", short: "f" },
} as Record<keyof typeof SAMPLE_FLAGS, { type: "string" }> & {
  instance: { type: "string" };
  custom: { type: "string"; multiple: true };
  file: { type: "string"; short: "f" };
};

const sampleListSchema = z.array(loadMetricsSchema).min(1, { message: "must hold at least 1 sample" });

/**
 * A file holds one sample, an array of them, or `{ samples: [...] }` (the batch endpoint's body). The shape is
 * picked first, so every issue names its field ("1.cpuPercent") rather than "no union member matched".
 */
function samplesFromFile(path: string): LoadMetrics[] {
  const content = readDataFile(path);
  const message = `metrics file ${path} is invalid; nothing was sent`;
  if (Array.isArray(content)) return validate(sampleListSchema, content, message);
  if (typeof content === "object" && content !== null && "samples" in content) {
    return validate(z.strictObject({ samples: sampleListSchema }), content, message).samples;
  }
  return [validate(loadMetricsSchema, content, message)];
}

function sampleFromFlags(values: Record<string, string | string[] | boolean | undefined>) {
  const sample: Record<string, unknown> = {};
  for (const [flag, field] of Object.entries(SAMPLE_FLAGS)) {
    const value = numberFlag(values[flag] as string | undefined, flag);
    if (value !== undefined) sample[field] = value;
  }
  if (values.instance !== undefined) sample.instanceId = values.instance;
  const custom = values.custom as string[] | undefined;
  if (custom?.length) {
    sample.custom = Object.fromEntries(
      custom.map((pair) => {
        const match = /^([^=]+)=(.+)$/.exec(pair);
        if (!match) throw new UsageError(`--custom must be name=value, got ${JSON.stringify(pair)}`);
        return [match[1], numberFlag(match[2], `custom ${match[1]}`)];
      }),
    );
  }
  return sample;
}

const FLAG_OF_FIELD: Record<string, string> = Object.fromEntries(
  Object.entries({ ...SAMPLE_FLAGS, instance: "instanceId" }).map(([flag, field]) => [field, flag]),
);

/** Validates a sample built from flags; issues name the flag as well as the field. */
function sampleOrIssuesByFlag(sample: Record<string, unknown>): LoadMetrics {
  const parsed = loadMetricsSchema.safeParse(sample);
  if (parsed.success) return parsed.data;
  const issues = fieldIssues(parsed.error).map((issue) => {
    const flag = FLAG_OF_FIELD[issue.field];
    return flag ? { ...issue, field: `--${flag} (${issue.field})` } : issue;
  });
  throw new CliError("the sample is invalid; nothing was sent", issues);
}

export const metricsPushCommand: Command = {
  name: "metrics push",
  summary: "record load samples: one from flags, or one or many from a JSON/YAML file",
  usage:
    "<proxyId> (--cpu N --memory N --request-rate N --latency MS --error-rate N [--instance ID] [--replicas N] [--unhealthy N] [--custom name=value ...] | --file samples.json)",
  examples: [
    "proxyscale metrics push 0b9c6f5e-6a58-4a8e-9a43-2f1f0f7c1f3e --cpu 85 --memory 60 --request-rate 1200 --latency 35 --error-rate 0.5",
    "proxyscale metrics push 0b9c6f5e-6a58-4a8e-9a43-2f1f0f7c1f3e --file ./samples.yaml",
  ],
  async run(argv, env) {
    const { values, positionals, session } = parseCommand(argv, OPTIONS, env);
    const proxyId = onePositional(positionals, "proxyId");
    const fromFlags = sampleFromFlags(values);
    let samples: LoadMetrics[];
    if (values.file !== undefined) {
      if (Object.keys(fromFlags).length > 0)
        throw new UsageError("give the sample as flags or as --file, not both");
      samples = samplesFromFile(values.file);
    } else {
      samples = [sampleOrIssuesByFlag(fromFlags)];
    }
    const client = session.client();
    if (samples.length === 1) {
      const recorded = await client.metrics.record.mutate({ ...samples[0]!, proxyId });
      return {
        data: recorded,
        text: `recorded 1 sample for proxy ${proxyId}: load score ${recorded.loadScore}`,
      };
    }
    const recorded = await client.metrics.recordBatch.mutate({ proxyId, samples });
    const scores = table(
      recorded.loadScores.map((score, index) => ({ index, score })),
      [
        ["sample", (row) => row.index + 1],
        ["load score", (row) => row.score],
      ],
    );
    return { data: recorded, text: `recorded ${recorded.recorded} samples for proxy ${proxyId}\n${scores}` };
  },
};

export const metricsLatestCommand: Command = {
  name: "metrics latest",
  summary: "the latest sample of each instance of a proxy (every page)",
  usage: "<proxyId> [--page-size 500]",
  examples: ["proxyscale metrics latest 0b9c6f5e-6a58-4a8e-9a43-2f1f0f7c1f3e"],
  async run(argv, env) {
    const { values, positionals, session } = parseCommand(argv, { "page-size": { type: "string" } }, env);
    const proxyId = onePositional(positionals, "proxyId");
    const pageSize = intFlag(values["page-size"] as string | undefined, "page-size", { min: 1, max: 500 });
    const samples = await allLatestSamples(session.client(), proxyId, pageSize ? { pageSize } : {});
    const rows = table(samples, [
      ["instance", (sample) => sample.instanceId ?? "(fleet average)"],
      ["at", (sample) => time(new Date(sample.at).toISOString())],
      ["cpu %", (sample) => sample.cpuPercent],
      ["memory %", (sample) => sample.memoryPercent],
      ["requests/s", (sample) => sample.requestRate],
      ["load score", (sample) => sample.loadScore],
    ]);
    return {
      data: { proxyId, samples },
      text: `${samples.length} instance${samples.length === 1 ? "" : "s"} of proxy ${proxyId}\n${rows}`,
    };
  },
};
