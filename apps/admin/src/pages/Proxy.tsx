import {
  DEFAULT_BUCKET_MINUTES,
  DEFAULT_OVERLAY_HOURS_AHEAD,
  DEFAULT_OVERLAY_HOURS_BACK,
  describeLimit,
  MAX_OVERLAY_HOURS_BACK,
} from "@proxyscale/core";
import { useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { Link, useLoaderData, useParams, useSearchParams } from "react-router";
import { Chart, type ChartMarker } from "../components/Chart.tsx";
import { DecisionChain } from "../components/DecisionChain.tsx";
import { EventsTable } from "../components/EventsTable.tsx";
import { ProxyTabs } from "../components/ProxyTabs.tsx";
import { describeSource, SourceHealth } from "../components/SourceHealth.tsx";
import { Empty, ErrorState, Loading, QueryView } from "../components/States.tsx";
import { Time } from "../components/Time.tsx";
import { useLiveUpdates } from "../live.ts";
import { type RouterOutputs, useTRPC } from "../trpc.ts";
import {
  type ChartField,
  type ProxyPageLoaderData,
  proxyPageQueries,
  proxyPageWindow,
  RANGES,
  type RangeKey,
} from "./proxy-queries.ts";
import { replicaData } from "./replica-data.ts";

type Columns = RouterOutputs["metrics"]["range"]["columns"];
type StoredDecision = RouterOutputs["scaling"]["decisions"]["items"][number];
type ScalingEvent = RouterOutputs["scaling"]["events"]["items"][number];
type Policy = RouterOutputs["policies"]["get"]["policy"];
type Forecast = RouterOutputs["scaling"]["forecast"];

const seconds = (ms: number) => ms / 1000;

/** One time axis for several sources: uPlot wants every series aligned on the same x values. */
function align(sources: { at: number; values: (number | null)[] }[], width: number) {
  const sorted = [...sources].sort((a, b) => a.at - b.at);
  const x: number[] = [];
  const columns: (number | null)[][] = Array.from({ length: width }, () => []);
  for (const source of sorted) {
    x.push(seconds(source.at));
    for (let i = 0; i < width; i++) columns[i]!.push(source.values[i] ?? null);
  }
  return [x, ...columns] as [number[], ...(number | null)[][]];
}

/** Each metric with the policy's target for it (latency only when the policy sets one). */
function metricCharts(columns: Columns, x: number[], policy: Policy) {
  const charts: { title: string; key: ChartField; target: number | undefined }[] = [
    { title: "CPU % vs targetCpuPercent", key: "cpuPercent", target: policy.targetCpuPercent },
    { title: "Memory % vs targetMemoryPercent", key: "memoryPercent", target: policy.targetMemoryPercent },
    { title: "Request rate vs targetRequestRate", key: "requestRate", target: policy.targetRequestRate },
    { title: "Latency ms vs targetLatencyMs", key: "avgLatencyMs", target: policy.targetLatencyMs },
  ];
  return charts.map((chart) => ({
    title: chart.title,
    target: chart.target ?? null,
    data: [x, columns[chart.key] ?? []] as [number[], ...(number | null)[][]],
  }));
}

/**
 * Actual and forecast fleet request rate per bucket, and "now" as a series of its own: two points at now's x
 * (0 and the chart's top), which uPlot joins into a vertical line.
 */
function forecastData(forecast: Forecast) {
  const top = Math.max(0, ...forecast.points.flatMap((point) => [point.actual ?? 0, point.forecast ?? 0]));
  return align(
    [
      ...forecast.points.map((point) => ({ at: point.at, values: [point.actual, point.forecast, null] })),
      { at: forecast.now, values: [null, null, 0] },
      { at: forecast.now, values: [null, null, top] },
    ],
    3,
  );
}

function eventMarkers(events: ScalingEvent[], decisions: StoredDecision[]): ChartMarker[] {
  const byId = new Map(decisions.map((d) => [d.id, d]));
  return events.map((event) => ({
    x: seconds(Date.parse(event.createdAt)),
    text: `${event.eventType.replace("_", " ")} ${event.previousReplicas} → ${event.newReplicas} (${event.status}): ${
      (event.decisionId ? byId.get(event.decisionId)?.decision.explanation : undefined) ?? event.reason
    }`,
  }));
}

export default function ProxyPage() {
  const { proxyId = "" } = useParams();
  const trpc = useTRPC();
  const live = useLiveUpdates(proxyId);
  const [params, setParams] = useSearchParams();
  const { range, pointCount } = proxyPageWindow(params);
  // When the router's loader opened this window (it started the queries below); a page rendered without it
  // (a test) opens its own.
  const loaded = useLoaderData() as ProxyPageLoaderData | undefined;
  const [mountedAt] = useState(Date.now);
  // The window ends at the latest pushed change, so new samples extend the charts.
  const to = Math.max(loaded?.openedAt ?? mountedAt, live.lastChangeAt ?? 0);
  const from = to - RANGES[range];
  const xRange = useMemo((): [number, number] => [seconds(from), seconds(to)], [from, to]);

  const queries = proxyPageQueries(trpc, { proxyId, range, pointCount, to });
  const proxy = useQuery(queries.proxy);
  const policy = useQuery(queries.policy);
  const samples = useQuery({ ...queries.samples, placeholderData: (previous) => previous });
  // The forecast's past covers the chart range but at least a day: the season the forecast learns from.
  const forecastHoursBack = Math.min(
    MAX_OVERLAY_HOURS_BACK,
    Math.max(DEFAULT_OVERLAY_HOURS_BACK, Math.round(RANGES[range] / 3_600_000)),
  );
  const forecast = useQuery({
    ...trpc.scaling.forecast.queryOptions({
      proxyId,
      hoursBack: forecastHoursBack,
      hoursAhead: DEFAULT_OVERLAY_HOURS_AHEAD,
    }),
    enabled: policy.data?.policy.strategy === "predictive",
    placeholderData: (previous) => previous,
    // The fit changes once a bucket; refetching then also moves the now line.
    refetchInterval: DEFAULT_BUCKET_MINUTES * 60_000,
  });
  const forecastChart = useMemo(
    () =>
      forecast.data
        ? {
            data: forecastData(forecast.data),
            xRange: [
              seconds(forecast.data.now) - forecastHoursBack * 3_600,
              seconds(forecast.data.now) + DEFAULT_OVERLAY_HOURS_AHEAD * 3_600,
            ] as [number, number],
          }
        : null,
    [forecast.data, forecastHoursBack],
  );
  const decisions = useQuery(queries.decisions);
  const events = useQuery(queries.events);
  // After the range: on PGlite's one connection the summary would otherwise queue ahead of the charts' data.
  const summary = useQuery({ ...queries.summary, enabled: !samples.isPending });

  const charts = useMemo(() => {
    if (!samples.data || !policy.data) return null;
    const { columns } = samples.data;
    const x = columns.at.map(seconds);
    return {
      load: [x, columns.loadScore ?? []] as [number[], ...(number | null)[][]],
      metrics: metricCharts(columns, x, policy.data.policy),
    };
  }, [samples.data, policy.data]);
  const replicas = useMemo(
    () =>
      samples.data && decisions.data && events.data
        ? {
            data: replicaData(samples.data.columns, decisions.data.items, events.data.items, from),
            markers: eventMarkers(events.data.items, decisions.data.items),
          }
        : null,
    [samples.data, decisions.data, events.data, from],
  );

  if (proxy.error) return <ErrorState error={proxy.error} what="this proxy" />;
  if (proxy.isPending) return <Loading what="the proxy" />;
  const latest = decisions.data?.items[0]?.decision;
  const stale = latest?.limits.find((limit) => limit.kind === "noMetrics" && limit.metric === undefined);
  const fallback = latest?.limits.find((limit) => limit.kind === "fallback");

  return (
    <section aria-labelledby="proxy-title">
      <p className="crumbs">
        <Link to="/">Fleet</Link> / {proxy.data.name}
      </p>
      <h1 id="proxy-title">{proxy.data.name}</h1>
      <ProxyTabs proxyId={proxyId} />
      <dl className="facts">
        <div>
          <dt>Replicas</dt>
          <dd>
            {proxy.data.currentReplicas} current / {proxy.data.desiredReplicas} desired
          </dd>
        </div>
        <div>
          <dt>Health</dt>
          <dd>{proxy.data.health}</dd>
        </div>
        <div>
          <dt>Environment</dt>
          <dd>
            {proxy.data.environment}
            {proxy.data.region ? ` · ${proxy.data.region}` : ""}
          </dd>
        </div>
        <div>
          <dt>Policy</dt>
          <dd>
            {policy.data
              ? `${policy.data.policy.strategy}, mode ${policy.data.policy.mode} (${policy.data.source})`
              : "…"}
          </dd>
        </div>
        <div>
          <dt>Metrics source</dt>
          <dd data-testid="metrics-source">{describeSource(proxy.data.metricsSource)}</dd>
        </div>
        <div>
          <dt>Live updates</dt>
          <dd data-testid="live-status">{live.error ? `unavailable: ${live.error.message}` : live.status}</dd>
        </div>
      </dl>

      {proxy.data.metricsSource.kind === "push" ? null : (
        <>
          <h2>Metrics source</h2>
          <SourceHealth proxyId={proxyId} changedAt={live.lastChangeAt} />
        </>
      )}

      {stale || fallback ? (
        <div className="state warning" role="status" data-testid="fallback-state">
          <strong>Metrics are stale.</strong> {stale ? describeLimit(stale) : null}
          {fallback ? (
            <p>Fallback is active: {describeLimit(fallback)}.</p>
          ) : policy.data ? (
            <p>
              After {policy.data.policy.fallback.failureThreshold} missed reconcile intervals, fallback{" "}
              {policy.data.policy.fallback.replicas === undefined
                ? "holds the current count"
                : `moves to ${policy.data.policy.fallback.replicas} replicas`}
              .
            </p>
          ) : null}
        </div>
      ) : null}

      <fieldset className="range">
        <legend>Chart range</legend>
        {(Object.keys(RANGES) as RangeKey[]).map((key) => (
          <button
            key={key}
            type="button"
            aria-pressed={range === key}
            onClick={() => {
              const next = new URLSearchParams(params);
              next.set("range", key);
              setParams(next);
            }}
          >
            {key}
          </button>
        ))}
      </fieldset>

      <h2>Charts</h2>
      {samples.error ? <ErrorState error={samples.error} what="the metrics" /> : null}
      {policy.error ? <ErrorState error={policy.error} what="the policy" /> : null}
      {!charts ? (
        samples.error || policy.error ? null : (
          <Loading what="the charts" />
        )
      ) : samples.data?.columns.at.length === 0 ? (
        <Empty>
          No samples in this range. Push metrics (CLI: metrics push {proxyId}) or pick a longer range.
        </Empty>
      ) : (
        <div className="charts" data-testid="charts">
          <Chart
            title="Load score with thresholds"
            data={charts.load}
            xRange={xRange}
            series={[
              { label: "load score", color: "#1d4ed8" },
              {
                label: "scaleUpThreshold",
                color: "#b91c1c",
                dash: true,
                level: policy.data?.policy.scaleUpThreshold ?? null,
              },
              {
                label: "scaleDownThreshold",
                color: "#047857",
                dash: true,
                level: policy.data?.policy.scaleDownThreshold ?? null,
              },
            ]}
          />
          {charts.metrics.map((chart) => (
            <Chart
              key={chart.title}
              title={chart.title}
              data={chart.data}
              xRange={xRange}
              height={150}
              series={[
                { label: "value", color: "#7c3aed" },
                {
                  label: chart.target === null ? "target (not set)" : "target",
                  color: "#b45309",
                  dash: true,
                  level: chart.target,
                },
              ]}
            />
          ))}
          {replicas ? (
            <Chart
              title="Replicas: current vs desired, with scaling events"
              data={replicas.data}
              xRange={xRange}
              markers={replicas.markers}
              series={[
                { label: "current", color: "#1d4ed8", stepped: true },
                { label: "desired", color: "#b45309", stepped: true, dash: true },
                { label: "scaling event", color: "#be123c", markers: true },
              ]}
            />
          ) : null}
        </div>
      )}

      {policy.data?.policy.strategy === "predictive" ? (
        <div className="charts" data-testid="forecast">
          {forecast.error ? <ErrorState error={forecast.error} what="the forecast" /> : null}
          {forecast.data?.unavailableReason ? (
            <p className="state" role="status" data-testid="forecast-note">
              No forecast overlay: {forecast.data.unavailableReason}. Until then the predictive policy scales
              as target tracking.
            </p>
          ) : forecastChart ? (
            <Chart
              title={`Fleet request rate (req/s): actual vs forecast, next ${DEFAULT_OVERLAY_HOURS_AHEAD} h`}
              data={forecastChart.data}
              xRange={forecastChart.xRange}
              series={[
                { label: "actual", color: "#1d4ed8" },
                { label: "forecast", color: "#b45309", dash: true },
                { label: "now", color: "#6b7280" },
              ]}
            />
          ) : forecast.error ? null : (
            <Loading what="the forecast" />
          )}
        </div>
      ) : null}

      <h2>Summary ({range})</h2>
      <QueryView
        query={summary}
        what="the summary"
        render={(data) => (
          <dl className="facts" data-testid="summary">
            <div>
              <dt>Events</dt>
              <dd>
                {data.events.total} (
                {Object.entries(data.events.byType)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(", ") || "none"}
                )
              </dd>
            </div>
            <div>
              <dt>Load score avg / max</dt>
              <dd>
                {fmt(data.loadScore.avg)} / {fmt(data.loadScore.max)}
              </dd>
            </div>
            <div>
              <dt>Replicas avg / max</dt>
              <dd>
                {fmt(data.replicas.avg)} / {fmt(data.replicas.max)}
              </dd>
            </div>
            <div>
              <dt>Avg scaling duration</dt>
              <dd>
                {data.avgScalingDurationMs === null ? "—" : `${Math.round(data.avgScalingDurationMs)} ms`}
              </dd>
            </div>
            <div>
              <dt>Trend</dt>
              <dd>
                {data.trend.direction}
                {data.trend.slopePerHour === null ? "" : ` (${fmt(data.trend.slopePerHour)} points/h)`}
              </dd>
            </div>
            <div>
              <dt>Samples</dt>
              <dd>{data.samples}</dd>
            </div>
            {data.spend === null ? null : (
              <>
                <div>
                  <dt>Spend this month</dt>
                  <dd data-testid="spend">
                    {money(data.spend.spent)} ({fmt(data.spend.replicaHours)} replica-hours at{" "}
                    {money(data.spend.costPerReplicaHour)}/h)
                  </dd>
                </div>
                <div>
                  <dt>Month's projection</dt>
                  <dd data-testid="spend-projection">
                    {money(data.spend.projected)}
                    {data.spend.monthlyBudget === null ? "" : ` of budget ${money(data.spend.monthlyBudget)}`}
                  </dd>
                </div>
              </>
            )}
          </dl>
        )}
      />

      <h2>Scaling events</h2>
      <QueryView
        query={events}
        what="the scaling events"
        render={(data) => <EventsTable events={data.items} />}
      />

      <h2>Decision log</h2>
      <QueryView
        query={decisions}
        what="the decision log"
        render={(data) =>
          data.items.length === 0 ? (
            <Empty>
              No decisions yet: the control loop decides on every metrics push and every reconcile.
            </Empty>
          ) : (
            <ol className="decisions" data-testid="decisions">
              {data.items.map((item) => (
                <li key={item.id} data-decision-id={item.id}>
                  <p className="decision-head">
                    <Time value={item.evaluatedAt} /> · {item.triggeredBy} ·{" "}
                    <strong>
                      {item.decision.action === "none"
                        ? "not scaled"
                        : item.decision.action.replace("_", " ")}
                    </strong>
                  </p>
                  <DecisionChain decision={item.decision} />
                </li>
              ))}
            </ol>
          )
        }
      />
    </section>
  );
}

/** An amount in the operator's currency (the policy's costPerReplicaHour names none). */
function money(value: number): string {
  return value.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function fmt(value: number | null): string {
  return value === null ? "—" : value.toLocaleString(undefined, { maximumFractionDigits: 1 });
}
