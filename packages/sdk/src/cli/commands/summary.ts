import { type Command, intFlag, onePositional, parseCommand } from "../command.ts";
import { keyValues, num, time } from "../format.ts";

function counts(record: Record<string, number>): string {
  const nonZero = Object.entries(record).filter(([, count]) => count > 0);
  return nonZero.length === 0 ? "none" : nonZero.map(([name, count]) => `${name} ${count}`).join(", ");
}

export const summaryCommand: Command = {
  name: "summary",
  summary: "events, load and replicas of a proxy over the last hours",
  usage: "<proxyId> [--hours 24]",
  examples: ["proxyscale summary 0b9c6f5e-6a58-4a8e-9a43-2f1f0f7c1f3e --hours 6"],
  async run(argv, env) {
    const { values, positionals, session } = parseCommand(argv, { hours: { type: "string" } }, env);
    const proxyId = onePositional(positionals, "proxyId");
    const summary = await session.client().scaling.summary.query({
      proxyId,
      hoursBack: intFlag(values.hours, "hours", { min: 1 }),
    });
    const slope = summary.trend.slopePerHour;
    return {
      data: summary,
      text: keyValues([
        ["proxy", summary.proxyId],
        ["window", `${time(summary.from)} → ${time(summary.to)} (${summary.hoursBack} h)`],
        ["events", `${summary.events.total} (${counts(summary.events.byType)})`],
        ["by status", counts(summary.events.byStatus)],
        ["samples", summary.samples],
        ["load score", `avg ${num(summary.loadScore.avg)}, max ${num(summary.loadScore.max)}`],
        ["replicas", `avg ${num(summary.replicas.avg)}, max ${num(summary.replicas.max)}`],
        ["avg scaling", summary.avgScalingDurationMs === null ? null : `${summary.avgScalingDurationMs} ms`],
        [
          "trend",
          slope === null ? summary.trend.direction : `${summary.trend.direction} (${num(slope)} per hour)`,
        ],
      ]),
    };
  },
};
