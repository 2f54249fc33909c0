import type { EvaluationOutput } from "../../client.ts";
import { type Command, intFlag, onePositional, parseCommand } from "../command.ts";
import { keyValues, table } from "../format.ts";

/** The decision as a person reads it: core's explanation first, then the numbers behind it. */
export function decisionText(decision: EvaluationOutput): string {
  const lines = [
    decision.explanation,
    "",
    keyValues([
      ["action", decision.action],
      [
        "replicas",
        `${decision.currentReplicas} → ${decision.desiredReplicas} (recommended ${decision.recommendedReplicas})`,
      ],
      ["load score", decision.loadScore],
      ["strategy", `${decision.strategy} (policy from ${decision.policySource})`],
      ["decision", decision.decisionId],
    ]),
  ];
  if (decision.metrics.length > 0) {
    lines.push(
      "",
      table(decision.metrics, [
        ["metric", (metric) => metric.metric],
        ["value", (metric) => metric.value],
        ["target", (metric) => metric.target],
        ["ratio", (metric) => metric.ratio],
        ["proposes", (metric) => metric.proposedReplicas],
      ]),
    );
  }
  return lines.join("\n");
}

export const evaluateCommand: Command = {
  name: "evaluate",
  summary: "run the engine on a proxy now and store the decision (operator)",
  usage: "<proxyId> [--current-replicas N]",
  examples: [
    "proxyscale evaluate 0b9c6f5e-6a58-4a8e-9a43-2f1f0f7c1f3e",
    "proxyscale evaluate 0b9c6f5e-6a58-4a8e-9a43-2f1f0f7c1f3e --current-replicas 4 --json",
  ],
  async run(argv, env) {
    const { values, positionals, session } = parseCommand(
      argv,
      { "current-replicas": { type: "string" } },
      env,
    );
    const proxyId = onePositional(positionals, "proxyId");
    const currentReplicas = intFlag(values["current-replicas"], "current-replicas", { min: 0 });
    const decision = await session
      .client()
      .scaling.evaluate.mutate({ proxyId, ...(currentReplicas === undefined ? {} : { currentReplicas }) });
    return { data: decision, text: decisionText(decision) };
  },
};
