import { useInfiniteQuery, useQueries } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import { Sparkline } from "../components/Chart.tsx";
import { Empty, ErrorState, Loading, LoadMore } from "../components/States.tsx";
import { useLiveUpdates } from "../live.ts";
import { pagedQueryOptions, type RouterOutputs, useTRPC, useTRPCClient } from "../trpc.ts";

type Proxy = RouterOutputs["proxies"]["list"]["items"][number];

interface Row {
  proxy: Proxy;
  loadScore: number | null;
  strategy: string | null;
  mode: string | null;
  sentence: string | null;
  spark: { at: number; value: number }[];
}

const COLUMNS = [
  { key: "name", label: "Proxy", value: (row: Row) => row.proxy.name },
  { key: "environment", label: "Environment", value: (row: Row) => row.proxy.environment },
  { key: "region", label: "Region", value: (row: Row) => row.proxy.region ?? "" },
  { key: "replicas", label: "Replicas (current / desired)", value: (row: Row) => row.proxy.currentReplicas },
  { key: "health", label: "Health", value: (row: Row) => row.proxy.health },
  { key: "load", label: "Load score", value: (row: Row) => row.loadScore ?? -1 },
  { key: "strategy", label: "Strategy", value: (row: Row) => row.strategy ?? "" },
  { key: "mode", label: "Mode", value: (row: Row) => row.mode ?? "" },
  { key: "decision", label: "Last decision", value: (row: Row) => row.sentence ?? "" },
] as const;

const SPARK_WINDOW_MS = 60 * 60 * 1000;
const PAGE_SIZE = 100;

export default function FleetPage() {
  const trpc = useTRPC();
  const client = useTRPCClient();
  useLiveUpdates();
  const [params, setParams] = useSearchParams();
  // Pages of 100; filters and sorting apply to the proxies loaded so far ("Load more" fetches the next page).
  const list = useInfiniteQuery(
    pagedQueryOptions(trpc.proxies.list.infiniteQueryKey({ limit: PAGE_SIZE }), (cursor) =>
      client.proxies.list.query({ limit: PAGE_SIZE, cursor }),
    ),
  );
  const proxies = list.data?.pages.flatMap((page) => page.items) ?? [];
  // The window is fixed per render of the list, so the sparkline queries share one cache key until it refetches.
  const to = list.dataUpdatedAt || 0;
  const details = useQueries({
    queries: proxies.flatMap((proxy) => [
      trpc.policies.get.queryOptions({ proxyId: proxy.id }),
      trpc.scaling.decisions.queryOptions({ proxyId: proxy.id, limit: 1 }),
      trpc.metrics.range.queryOptions({
        proxyId: proxy.id,
        from: to - SPARK_WINDOW_MS,
        to,
        points: 30,
        fields: ["loadScore"],
      }),
    ]),
  });

  if (list.error) return <ErrorState error={list.error} what="the fleet" />;
  if (list.isPending) return <Loading what="the fleet" />;

  const rows: Row[] = proxies.map((proxy, index) => {
    const policy = details[index * 3]?.data as RouterOutputs["policies"]["get"] | undefined;
    const decisions = details[index * 3 + 1]?.data as RouterOutputs["scaling"]["decisions"] | undefined;
    const range = details[index * 3 + 2]?.data as RouterOutputs["metrics"]["range"] | undefined;
    const at = range?.columns.at ?? [];
    const loadScores = range?.columns.loadScore ?? [];
    return {
      proxy,
      loadScore: decisions?.items[0]?.decision.loadScore ?? loadScores.at(-1) ?? null,
      strategy: policy?.policy.strategy ?? null,
      mode: policy?.policy.mode ?? null,
      sentence: decisions?.items[0]?.decision.explanation ?? null,
      spark: at.map((time, i) => ({ at: time, value: loadScores[i]! })),
    };
  });

  const environment = params.get("environment") ?? "";
  const region = params.get("region") ?? "";
  const sort = COLUMNS.find((column) => column.key === params.get("sort")) ?? COLUMNS[0];
  const descending = params.get("dir") === "desc";
  const environments = [...new Set(proxies.map((proxy) => proxy.environment))].sort();
  const regions = [...new Set(proxies.map((proxy) => proxy.region ?? ""))].filter(Boolean).sort();
  const shown = rows
    .filter(
      (row) =>
        (!environment || row.proxy.environment === environment) && (!region || row.proxy.region === region),
    )
    .sort((a, b) => {
      const x = sort.value(a);
      const y = sort.value(b);
      const order =
        typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return descending ? -order : order;
    });

  const setParam = (name: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next, { replace: true });
  };

  if (proxies.length === 0) {
    return (
      <section aria-labelledby="fleet-title">
        <h1 id="fleet-title">Fleet</h1>
        <Empty>
          <p>No proxies yet. Register one with the CLI:</p>
          <pre>
            <code>npm run -s proxyscale -- proxies create --name edge-eu</code>
          </pre>
          <p>or from code with the SDK:</p>
          <pre>
            <code>{`import { createProxyScaleClient } from "@proxyscale/sdk";
const client = createProxyScaleClient({ url: "${window.location.origin}", token });
await client.proxies.register.mutate({ name: "edge-eu" });`}</code>
          </pre>
        </Empty>
      </section>
    );
  }

  return (
    <section aria-labelledby="fleet-title">
      <h1 id="fleet-title">Fleet</h1>
      <div className="filters">
        <label>
          Environment
          <select value={environment} onChange={(event) => setParam("environment", event.target.value)}>
            <option value="">all</option>
            {environments.map((name) => (
              <option key={name}>{name}</option>
            ))}
          </select>
        </label>
        <label>
          Region
          <select value={region} onChange={(event) => setParam("region", event.target.value)}>
            <option value="">all</option>
            {regions.map((name) => (
              <option key={name}>{name}</option>
            ))}
          </select>
        </label>
      </div>
      <div className="table-scroll">
        <table className="fleet">
          <thead>
            <tr>
              {COLUMNS.map((column) => (
                <th
                  key={column.key}
                  scope="col"
                  aria-sort={sort.key === column.key ? (descending ? "descending" : "ascending") : "none"}
                >
                  <button
                    type="button"
                    className="sort"
                    onClick={() => {
                      const next = new URLSearchParams(params);
                      next.set("sort", column.key);
                      next.set("dir", sort.key === column.key && !descending ? "desc" : "asc");
                      setParams(next, { replace: true });
                    }}
                  >
                    {column.label}
                    <span aria-hidden="true">
                      {sort.key === column.key ? (descending ? " ▼" : " ▲") : ""}
                    </span>
                  </button>
                </th>
              ))}
              <th scope="col">Load (1 h)</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((row) => (
              <tr key={row.proxy.id}>
                <td data-label="Proxy">
                  <Link to={`/proxies/${row.proxy.id}`}>{row.proxy.name}</Link>
                </td>
                <td data-label="Environment">{row.proxy.environment}</td>
                <td data-label="Region">{row.proxy.region ?? "—"}</td>
                <td data-label="Replicas">
                  {row.proxy.currentReplicas} / {row.proxy.desiredReplicas}
                </td>
                <td data-label="Health">
                  <span className={`health ${row.proxy.health}`}>{row.proxy.health}</span>
                  {row.proxy.unhealthyReplicas > 0 ? ` (${row.proxy.unhealthyReplicas} unhealthy)` : ""}
                </td>
                <td data-label="Load score">{row.loadScore === null ? "—" : row.loadScore.toFixed(1)}</td>
                <td data-label="Strategy">{row.strategy ?? "…"}</td>
                <td data-label="Mode">{row.mode ?? "…"}</td>
                <td data-label="Last decision" className="sentence-cell">
                  {row.sentence ?? "no decision yet"}
                </td>
                <td data-label="Load (1 h)">
                  <Sparkline
                    values={row.spark}
                    label={`load score of ${row.proxy.name} over the last hour`}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {shown.length === 0 ? <Empty>No proxy matches these filters.</Empty> : null}
      <LoadMore query={list} what="proxies" />
    </section>
  );
}
