import { actuatorConfigSchema } from "@proxyscale/core";
import type { ProxyOutput, SourceHealthOutput } from "../../client.ts";
import { type Command, intFlag, noPositionals, onePositional, parseCommand, UsageError } from "../command.ts";
import { readDataFile, validate } from "../files.ts";
import { keyValues, table, time, yaml } from "../format.ts";

export function proxyDetails(proxy: ProxyOutput): string {
  return [
    keyValues([
      ["id", proxy.id],
      ["name", proxy.name],
      ["owner", proxy.ownerId],
      ["environment", proxy.environment],
      ["region", proxy.region],
      ["replicas", `${proxy.currentReplicas} (desired ${proxy.desiredReplicas})`],
      ["health", `${proxy.health} (${proxy.unhealthyReplicas} unhealthy)`],
      ["created", time(proxy.createdAt)],
    ]),
    "actuator:",
    yaml(proxy.actuator).replace(/^/gm, "  "),
    "metrics source:",
    yaml(proxy.metricsSource).replace(/^/gm, "  "),
  ].join("\n");
}

/** The last round of a pulled source: when, each target's health and, for Prometheus, each query's. */
export function sourceHealthDetails(health: SourceHealthOutput["health"]): string {
  if (health === null) {
    return "source health: none known (not scraped yet, or scraped by another server)";
  }
  const round = keyValues([
    ["last scrape", new Date(health.lastScrapeAt).toISOString()],
    ...(health.error ? ([["error", health.error]] as Array<[string, string]>) : []),
  ]);
  const targets = table(health.targets, [
    ["instance", (target) => target.instance],
    ["url", (target) => target.url],
    ["ok", (target) => (target.ok ? "yes" : "no")],
    ["sampled", (target) => (target.sampled ? "yes" : "no")],
    ["ms", (target) => Math.round(target.durationMs)],
    ["error", (target) => target.error ?? ""],
  ]);
  if (health.kind !== "prometheus") return `${round}\ntargets:\n${targets}`;
  const queries = table(health.queries, [
    ["field", (query) => query.field],
    ["promql", (query) => query.promql],
    ["ok", (query) => (query.ok ? "yes" : "no")],
    ["series", (query) => query.series],
    ["ms", (query) => Math.round(query.durationMs)],
    ["error", (query) => query.error ?? ""],
  ]);
  return `${round}\ntargets:\n${targets}\nqueries:\n${queries}`;
}

export const proxiesGetCommand: Command = {
  name: "proxies get",
  summary:
    "show a proxy: replicas, health, actuator, metrics source and, for a scraped one, each target's health",
  usage: "<proxyId>",
  examples: [
    "proxyscale proxies get 0b9c6f5e-6a58-4a8e-9a43-2f1f0f7c1f3e",
    "proxyscale proxies get <id> --json",
  ],
  async run(argv, env) {
    const { positionals, session } = parseCommand(argv, {}, env);
    const proxyId = onePositional(positionals, "proxyId");
    const client = session.client();
    const [proxy, source] = await Promise.all([
      client.proxies.get.query({ proxyId }),
      client.proxies.sourceHealth.query({ proxyId }),
    ]);
    const details = proxyDetails(proxy);
    const text =
      proxy.metricsSource.kind === "push" ? details : `${details}\n${sourceHealthDetails(source.health)}`;
    return { data: { ...proxy, sourceHealth: source.health }, text };
  },
};

export const proxiesListCommand: Command = {
  name: "proxies ls",
  summary: "list the proxies you may see (admins: all)",
  usage: "[--limit N] [--cursor C]",
  examples: ["proxyscale proxies ls", "proxyscale proxies ls --json | jq -r '.items[].id'"],
  async run(argv, env) {
    const { values, positionals, session } = parseCommand(
      argv,
      { limit: { type: "string" }, cursor: { type: "string" } },
      env,
    );
    noPositionals(positionals);
    const page = await session.client().proxies.list.query({
      limit: intFlag(values.limit, "limit", { min: 1, max: 500 }),
      cursor: values.cursor,
    });
    const rows = table(page.items, [
      ["id", (proxy) => proxy.id],
      ["name", (proxy) => proxy.name],
      ["environment", (proxy) => proxy.environment],
      ["region", (proxy) => proxy.region],
      ["replicas", (proxy) => `${proxy.currentReplicas}/${proxy.desiredReplicas}`],
      ["health", (proxy) => proxy.health],
      ["actuator", (proxy) => proxy.actuator.kind],
    ]);
    const more = page.nextCursor ? `\nmore: proxyscale proxies ls --cursor ${page.nextCursor}` : "";
    return { data: page, text: `${rows}${more}` };
  },
};

export const proxiesCreateCommand: Command = {
  name: "proxies create",
  summary: "register a proxy you own",
  usage: "--name NAME [--environment production] [--region R] [--actuator-file actuator.yaml]",
  examples: [
    "proxyscale proxies create --name edge-eu --environment staging --region eu-west-1",
    "proxyscale proxies create --name edge-k8s --actuator-file ./actuator.yaml",
  ],
  async run(argv, env) {
    const { values, positionals, session } = parseCommand(
      argv,
      {
        name: { type: "string" },
        environment: { type: "string" },
        region: { type: "string" },
        "actuator-file": { type: "string" },
      },
      env,
    );
    noPositionals(positionals);
    if (!values.name) throw new UsageError("missing --name <name>");
    const actuatorFile = values["actuator-file"];
    const actuator =
      actuatorFile === undefined
        ? undefined
        : validate(
            actuatorConfigSchema,
            readDataFile(actuatorFile),
            `actuator file ${actuatorFile} is invalid; nothing was sent`,
          );
    const proxy = await session.client().proxies.register.mutate({
      name: values.name,
      ...(values.environment === undefined ? {} : { environment: values.environment }),
      ...(values.region === undefined ? {} : { region: values.region }),
      ...(actuator === undefined ? {} : { actuator }),
    });
    return { data: proxy, text: `registered proxy ${proxy.id}\n${proxyDetails(proxy)}` };
  },
};

export const proxiesRemoveCommand: Command = {
  name: "proxies rm",
  summary: "delete a proxy and its data",
  usage: "<proxyId>",
  examples: ["proxyscale proxies rm 0b9c6f5e-6a58-4a8e-9a43-2f1f0f7c1f3e"],
  async run(argv, env) {
    const { positionals, session } = parseCommand(argv, {}, env);
    const proxyId = onePositional(positionals, "proxyId");
    const result = await session.client().proxies.delete.mutate({ proxyId });
    return { data: result, text: `deleted proxy ${result.proxyId}` };
  },
};
