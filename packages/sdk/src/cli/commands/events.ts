import type { ScalingEventOutput } from "../../client.ts";
import { type Command, intFlag, onePositional, parseCommand } from "../command.ts";
import { table, time } from "../format.ts";

export function eventTable(events: readonly ScalingEventOutput[]): string {
  return table(events, [
    ["id", (event) => event.id],
    ["type", (event) => event.eventType],
    ["replicas", (event) => `${event.previousReplicas} → ${event.newReplicas}`],
    ["status", (event) => event.status],
    ["by", (event) => event.triggeredBy],
    ["created", (event) => time(event.createdAt)],
    ["reason", (event) => (event.error ? `${event.reason} (error: ${event.error})` : event.reason)],
  ]);
}

export const eventsCommand: Command = {
  name: "events",
  summary: "a proxy's scaling events, newest first",
  usage: "<proxyId> [--limit 50] [--cursor C]",
  examples: ["proxyscale events 0b9c6f5e-6a58-4a8e-9a43-2f1f0f7c1f3e --limit 10"],
  async run(argv, env) {
    const { values, positionals, session } = parseCommand(
      argv,
      { limit: { type: "string" }, cursor: { type: "string" } },
      env,
    );
    const proxyId = onePositional(positionals, "proxyId");
    const page = await session.client().scaling.events.query({
      proxyId,
      limit: intFlag(values.limit, "limit", { min: 1, max: 500 }),
      cursor: values.cursor,
    });
    const more = page.nextCursor ? `\nmore: proxyscale events ${proxyId} --cursor ${page.nextCursor}` : "";
    return { data: page, text: `${eventTable(page.items)}${more}` };
  },
};
