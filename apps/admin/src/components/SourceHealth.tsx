import { useQuery } from "@tanstack/react-query";
import { useEffect } from "react";
import { type RouterOutputs, useTRPC } from "../trpc.ts";
import { Empty, ErrorState } from "./States.tsx";
import { Time } from "./Time.tsx";

type MetricsSource = RouterOutputs["proxies"]["get"]["metricsSource"];

/** How the proxy's metrics arrive, in a few words. */
export function describeSource(source: MetricsSource): string {
  switch (source.kind) {
    case "push":
      return "push (SDK, CLI or REST)";
    case "scrape":
      return `scrape every ${source.intervalSeconds} s (${typeof source.mapping === "string" ? source.mapping : "custom mapping"})`;
    case "prometheus":
      return `Prometheus, ${source.queries.length} ${source.queries.length === 1 ? "query" : "queries"} every ${source.intervalSeconds} s`;
  }
}

/**
 * A pulled source's last round and each target's health, as the server that scrapes the proxy saw it. Read
 * again on every live change of the proxy (its scraped samples are decided on as they arrive), not polled.
 */
export function SourceHealth({ proxyId, changedAt }: { proxyId: string; changedAt: number | null }) {
  const trpc = useTRPC();
  const health = useQuery(trpc.proxies.sourceHealth.queryOptions({ proxyId }));
  const { refetch } = health;
  useEffect(() => {
    if (changedAt !== null) void refetch();
  }, [changedAt, refetch]);
  if (health.error) return <ErrorState error={health.error} what="the source's health" />;
  const round = health.data?.health;
  if (!round) {
    return <Empty>No scrape known yet (not scraped yet, or scraped by another server).</Empty>;
  }
  return (
    <div data-testid="source-health">
      <p>
        Last {round.kind === "prometheus" ? "query round" : "scrape"} <Time value={round.lastScrapeAt} />
        {round.error ? `: ${round.error}` : ""}
      </p>
      <div className="table-scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">instance</th>
              <th scope="col">target</th>
              <th scope="col">answered</th>
              <th scope="col">sample stored</th>
              <th scope="col">took</th>
              <th scope="col">error</th>
            </tr>
          </thead>
          <tbody>
            {round.targets.map((target) => (
              <tr key={target.instance} data-target={target.instance}>
                <td>{target.instance}</td>
                <td>{target.url}</td>
                <td>{target.ok ? "yes" : "no"}</td>
                <td>{target.sampled ? "yes" : "no"}</td>
                <td>{Math.round(target.durationMs)} ms</td>
                <td>{target.error ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {round.kind === "prometheus" ? (
        <div className="table-scroll">
          <table data-testid="query-health">
            <thead>
              <tr>
                <th scope="col">field</th>
                <th scope="col">PromQL</th>
                <th scope="col">answered</th>
                <th scope="col">series</th>
                <th scope="col">took</th>
                <th scope="col">error</th>
              </tr>
            </thead>
            <tbody>
              {round.queries.map((query) => (
                <tr key={query.field}>
                  <td>{query.field}</td>
                  <td>
                    <code>{query.promql}</code>
                  </td>
                  <td>{query.ok ? "yes" : "no"}</td>
                  <td>{query.series}</td>
                  <td>{Math.round(query.durationMs)} ms</td>
                  <td>{query.error ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </div>
  );
}
