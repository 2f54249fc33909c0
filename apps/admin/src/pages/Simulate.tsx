import type { AppRouter } from "@proxyscale/api";
import {
  DEFAULT_POLICY,
  DEFAULT_SIMULATION_START,
  parseTrace,
  type ScalingPolicy,
  TraceFormatError,
} from "@proxyscale/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { isTRPCClientError } from "@trpc/client";
import { type ChangeEvent, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { ErrorState, Loading } from "../components/States.tsx";
import { useCan, useSession } from "../session.ts";
import { type RouterOutputs, useTRPC, useTRPCClient } from "../trpc.ts";
import { PolicyForm } from "./policy/PolicyForm.tsx";
import { placeIssues } from "./simulate/issues.ts";
import { type SimulationReport, SimulationResults } from "./simulate/SimulationResults.tsx";

/** The history windows a replay can take, ending now (the server allows up to 30 days). */
const WINDOWS = {
  "1h": 3_600_000,
  "6h": 6 * 3_600_000,
  "24h": 86_400_000,
  "7d": 7 * 86_400_000,
  "30d": 30 * 86_400_000,
} as const;
type WindowKey = keyof typeof WINDOWS;
const isWindow = (value: string | null): value is WindowKey => value !== null && value in WINDOWS;

type Proxy = RouterOutputs["proxies"]["list"]["items"][number];
type NamedPolicy = { name: string; policy: ScalingPolicy };
/** A finished run: the report, and exactly what it simulated (what "Apply" writes). */
interface Run {
  report: SimulationReport;
  policies: NamedPolicy[];
  proxy: Proxy | undefined;
}
interface CsvTrace {
  fileName: string;
  text: string;
  summary: string | null;
  error: string | null;
}

const SIDES = ["A", "B"] as const;
const START_NAMES = ["current", "candidate"];

/**
 * The what-if simulator: a trace (a proxy's stored history, or an uploaded CSV) replayed through two policies
 * edited side by side, charted against demand, with core's elasticity metrics per policy, HPA's defaults and
 * the oracle. The proxy, the trace's source and the window live in the URL (`?proxy=&source=&window=`).
 */
export default function SimulatePage() {
  const [search, setSearch] = useSearchParams();
  const trpc = useTRPC();
  const proxyId = search.get("proxy") ?? "";
  const proxies = useQuery(trpc.proxies.list.queryOptions({ limit: 100 }));
  const presets = useQuery(trpc.policies.listPresets.queryOptions({}));
  const policy = useQuery({ ...trpc.policies.get.queryOptions({ proxyId }), enabled: proxyId !== "" });

  const setParam = (key: string, value: string) =>
    setSearch(
      (current) => {
        const next = new URLSearchParams(current);
        if (value === "") next.delete(key);
        else next.set(key, value);
        return next;
      },
      { replace: true },
    );

  if (proxies.error) return <ErrorState error={proxies.error} what="the proxies" />;
  if (presets.error) return <ErrorState error={presets.error} what="the presets" />;
  if (policy.error) return <ErrorState error={policy.error} what="the proxy's policy" />;
  if (!proxies.data || !presets.data || (proxyId !== "" && !policy.data))
    return <Loading what="the simulator" />;
  const proxy = proxies.data.items.find((item) => item.id === proxyId);

  return (
    <section aria-labelledby="simulate-title">
      <p className="crumbs">
        <Link to="/">Fleet</Link> /{" "}
        {proxy ? (
          <>
            <Link to={`/proxies/${proxy.id}`}>{proxy.name}</Link> /{" "}
          </>
        ) : null}
        simulator
      </p>
      <h1 id="simulate-title">Simulator</h1>
      <p>
        Replays a request trace through two policies with the engine the control loop runs, and compares them
        with HPA's defaults and the oracle (the least capacity that meets every step's demand). Nothing is
        scaled.
      </p>
      <div className="field simulate-proxy">
        <label htmlFor="simulate-proxy">
          Proxy (its policy is where both policies start, and where Apply writes)
        </label>
        <select
          id="simulate-proxy"
          value={proxyId}
          onChange={(event) => setParam("proxy", event.target.value)}
        >
          <option value="">none: start from the defaults</option>
          {proxies.data.items.map((item) => (
            <option key={item.id} value={item.id}>
              {item.name} ({item.environment})
            </option>
          ))}
        </select>
      </div>
      <Workbench
        // Another proxy starts over: its policy in both forms, no result to apply to the wrong proxy.
        key={proxyId}
        proxy={proxy}
        saved={policy.data?.policy ?? DEFAULT_POLICY}
        presets={presets.data.presets}
        source={search.get("source") === "csv" || !proxy ? "csv" : "history"}
        windowKey={isWindow(search.get("window")) ? (search.get("window") as WindowKey) : "24h"}
        setParam={setParam}
      />
    </section>
  );
}

function Workbench({
  proxy,
  saved,
  presets,
  source,
  windowKey,
  setParam,
}: {
  proxy: Proxy | undefined;
  saved: ScalingPolicy;
  presets: { name: string; policy: ScalingPolicy }[];
  source: "history" | "csv";
  windowKey: WindowKey;
  setParam: (key: string, value: string) => void;
}) {
  const trpc = useTRPC();
  const client = useTRPCClient();
  const queryClient = useQueryClient();
  const session = useSession();
  const isAdmin = useCan("admin");
  const [names, setNames] = useState(START_NAMES);
  const [drafts, setDrafts] = useState<(ScalingPolicy | null)[]>([saved, saved]);
  const [csv, setCsv] = useState<CsvTrace | null>(null);
  /** The name of the policy the last Apply wrote. */
  const [appliedName, setAppliedName] = useState<string | null>(null);
  const resultsTitle = useRef<HTMLHeadingElement>(null);

  const run = useMutation({
    mutationFn: async (policies: NamedPolicy[]): Promise<Run> => {
      const to = Date.now();
      const report =
        source === "csv"
          ? await client.scaling.simulate.mutate({ trace: csv?.text ?? "", policies })
          : await client.scaling.simulateHistory.mutate({
              proxyId: proxy?.id ?? "",
              from: to - WINDOWS[windowKey],
              to,
              policies,
            });
      return { report, policies, proxy };
    },
    onSuccess: () => requestAnimationFrame(() => resultsTitle.current?.focus()),
  });
  const apply = useMutation(
    trpc.policies.upsert.mutationOptions({
      onSuccess: () => queryClient.invalidateQueries({ queryKey: trpc.policies.pathKey() }),
    }),
  );

  const issues = isTRPCClientError<AppRouter>(run.error) ? (run.error.data?.zodIssues ?? []) : [];
  const placed = placeIssues(issues, SIDES.length);
  const unplacedError = run.error && issues.length === 0 ? run.error : null;

  const blocker =
    source === "csv" && !csv?.summary
      ? "Upload a valid CSV trace first."
      : drafts
          .map((draft, index) => (draft ? null : `Fix the marked fields of policy ${SIDES[index]}.`))
          .find(Boolean);

  const upload = async (event: ChangeEvent<HTMLInputElement>) => {
    const file = event.target.files?.[0];
    if (!file) return setCsv(null);
    const text = await file.text();
    try {
      const trace = parseTrace(text);
      setCsv({
        fileName: file.name,
        text,
        summary: `${trace.requests.length} steps of ${trace.stepSeconds} s`,
        error: null,
      });
    } catch (error) {
      if (!(error instanceof TraceFormatError)) throw error;
      setCsv({ fileName: file.name, text, summary: null, error: error.message });
    }
  };

  const traceErrors = [...(csv?.error ? [csv.error] : []), ...placed.trace];
  const applyBlocker = !isAdmin
    ? `Applying a policy needs role admin; you are signed in as ${session?.claims.role}.`
    : !run.data?.proxy
      ? "Pick a proxy above to apply a policy to it."
      : null;

  return (
    <>
      <fieldset className="simulate-trace">
        <legend>Trace</legend>
        <div className="field" role="radiogroup" aria-label="Trace source">
          <label>
            <input
              type="radio"
              name="source"
              checked={source === "history"}
              disabled={!proxy}
              onChange={() => setParam("source", "history")}
            />{" "}
            The proxy's history (per-minute rollups){proxy ? "" : ": pick a proxy first"}
          </label>
          <label>
            <input
              type="radio"
              name="source"
              checked={source === "csv"}
              onChange={() => setParam("source", "csv")}
            />{" "}
            A CSV trace you upload
          </label>
        </div>
        {source === "history" ? (
          <div className={`field${placed.window.length > 0 ? " invalid" : ""}`}>
            <label htmlFor="simulate-window">Window, ending now</label>
            <select
              id="simulate-window"
              value={windowKey}
              aria-invalid={placed.window.length > 0}
              aria-describedby={placed.window.length > 0 ? "simulate-window-error" : undefined}
              onChange={(event) => setParam("window", event.target.value)}
            >
              {Object.keys(WINDOWS).map((key) => (
                <option key={key} value={key}>
                  last {key}
                </option>
              ))}
            </select>
            {placed.window.length > 0 ? (
              <p id="simulate-window-error" className="field-error" role="alert">
                {placed.window.join("; ")}
              </p>
            ) : null}
          </div>
        ) : (
          <div className={`field${traceErrors.length > 0 ? " invalid" : ""}`}>
            <label htmlFor="simulate-csv">
              CSV trace (header t_seconds,requests; one request count per step)
            </label>
            <input
              id="simulate-csv"
              type="file"
              accept=".csv,text/csv"
              aria-invalid={traceErrors.length > 0}
              aria-describedby={`simulate-csv-hint${traceErrors.length > 0 ? " simulate-csv-error" : ""}`}
              onChange={upload}
            />
            <small id="simulate-csv-hint" className="hint">
              {csv?.summary
                ? `${csv.fileName}: ${csv.summary}, replayed from ${new Date(DEFAULT_SIMULATION_START).toISOString()}`
                : "No trace loaded."}
            </small>
            {traceErrors.length > 0 ? (
              <p id="simulate-csv-error" className="field-error" role="alert">
                trace: {traceErrors.join("; ")}
              </p>
            ) : null}
          </div>
        )}
      </fieldset>

      <div className="policy-pair">
        {SIDES.map((side, index) => {
          const nameErrors = placed.names[index] ?? [];
          const nameId = `simulate-name-${side}`;
          return (
            <section key={side} aria-labelledby={`policy-${side}-title`} className="policy-side">
              <h2 id={`policy-${side}-title`}>Policy {side}</h2>
              <div className={`field${nameErrors.length > 0 ? " invalid" : ""}`}>
                <label htmlFor={nameId}>Name of policy {side}</label>
                <input
                  id={nameId}
                  value={names[index]}
                  aria-invalid={nameErrors.length > 0}
                  aria-describedby={nameErrors.length > 0 ? `${nameId}-error` : undefined}
                  onChange={(event) =>
                    setNames((current) =>
                      current.map((name, at) => (at === index ? event.target.value : name)),
                    )
                  }
                />
                {nameErrors.length > 0 ? (
                  <p id={`${nameId}-error`} className="field-error" role="alert">
                    policies.{index}.name: {nameErrors.join("; ")}
                  </p>
                ) : null}
              </div>
              <PolicyForm
                idPrefix={`policy-${side}`}
                label={`Policy ${side}`}
                saved={saved}
                inherited={{ policy: DEFAULT_POLICY, from: "global default" }}
                presets={presets}
                serverErrors={placed.policies[index]}
                onDraft={(draft) =>
                  setDrafts((current) => current.map((entry, at) => (at === index ? draft : entry)))
                }
              />
            </section>
          );
        })}
      </div>

      <div className="simulate-run">
        <button
          type="button"
          className="primary"
          disabled={Boolean(blocker) || run.isPending}
          aria-describedby={blocker ? "simulate-blocker" : undefined}
          onClick={() =>
            run.mutate(drafts.map((draft, index) => ({ name: names[index] ?? "", policy: draft! })))
          }
        >
          {run.isPending ? "Simulating…" : "Run simulation"}
        </button>
        {blocker ? (
          <span id="simulate-blocker" className="hint">
            {blocker}
          </span>
        ) : null}
      </div>
      {placed.other.length > 0 ? (
        <div className="state error" role="alert">
          <strong>The server refused the simulation</strong>
          <ul>
            {placed.other.map((message) => (
              <li key={message}>{message}</li>
            ))}
          </ul>
        </div>
      ) : null}
      {issues.length > 0 && placed.other.length === 0 ? (
        <p className="state error" role="alert">
          The server refused the simulation: see the fields marked above.
        </p>
      ) : null}
      {unplacedError ? <ErrorState error={unplacedError} what="the simulation" /> : null}

      {run.data ? (
        <section aria-labelledby="results-title" className="simulate-results">
          <h2 id="results-title" ref={resultsTitle} tabIndex={-1}>
            Results
          </h2>
          <SimulationResults
            report={run.data.report}
            policyNames={run.data.policies.map((entry) => entry.name)}
            apply={{
              blocker: applyBlocker,
              pendingName: apply.isPending ? (appliedName ?? undefined) : undefined,
              target: run.data.proxy?.name,
              onApply: (index) => {
                const chosen = run.data.policies[index];
                const target = run.data.proxy;
                if (!chosen || !target) return;
                setAppliedName(chosen.name);
                apply.mutate({ proxyId: target.id, ...chosen.policy });
              },
            }}
          />
          {apply.isSuccess && run.data.proxy ? (
            <p className="state success" role="status">
              Applied: {appliedName} is now {run.data.proxy.name}'s own policy.
            </p>
          ) : null}
          {apply.error ? <ErrorState error={apply.error} what="the applied policy" /> : null}
        </section>
      ) : null}
    </>
  );
}
