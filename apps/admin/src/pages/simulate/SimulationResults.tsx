import { COMPARED_METRICS } from "@proxyscale/core";
import { useId, useMemo, useState } from "react";
import { Chart, type ChartBand, type ChartSeries } from "../../components/Chart.tsx";
import type { RouterOutputs } from "../../trpc.ts";

/** A trace's report, or a replay's (which also names its window and the minutes it had to fill). */
export type SimulationReport =
  | RouterOutputs["scaling"]["simulate"]
  | RouterOutputs["scaling"]["simulateHistory"];

const DEMAND_COLOR = "#111827";
const SUPPLY_COLORS = ["#1d4ed8", "#7c3aed"];
const UNDER_FILL = "rgba(220, 38, 38, 0.28)";
const OVER_FILL = "rgba(217, 119, 6, 0.22)";

const formatMetric = (value: number) => (Number.isInteger(value) ? String(value) : value.toFixed(2));

export interface ApplyControls {
  /** Why Apply is unavailable (role, no proxy), or null. */
  blocker: string | null;
  /** The policy being written now. */
  pendingName: string | undefined;
  /** The proxy Apply writes to. */
  target: string | undefined;
  onApply: (policyIndex: number) => void;
}

/**
 * One chart of demand and both policies' supply, with one policy's under-provisioning (demand above its
 * supply) and over-provisioning (supply above demand) shaded as uPlot bands; then every row's metrics, in
 * core's COMPARED_METRICS, with Apply on the policies' rows.
 */
export function SimulationResults({
  report,
  policyNames,
  apply,
}: {
  report: SimulationReport;
  policyNames: string[];
  apply: ApplyControls;
}) {
  const [shaded, setShaded] = useState(policyNames.length - 1);
  const blockerId = useId();
  const series = useMemo<ChartSeries[]>(
    () => [
      { label: "demand req/s", color: DEMAND_COLOR },
      ...policyNames.map((name, index) => ({
        label: `supply req/s: ${name}`,
        color: SUPPLY_COLORS[index % SUPPLY_COLORS.length]!,
      })),
    ],
    [policyNames],
  );
  const data = useMemo(
    () =>
      [
        report.series.at.map((at) => at / 1000),
        report.series.demandRps,
        ...policyNames.map((name) => report.series.supplyRps[name] ?? []),
      ] as [number[], ...(number | null)[][]],
    [report, policyNames],
  );
  // Series 0 is demand; policy i is series i + 1.
  const bands: ChartBand[] = [
    { from: 0, to: shaded + 1, fill: UNDER_FILL },
    { from: shaded + 1, to: 0, fill: OVER_FILL },
  ];
  const shadedName = policyNames[shaded];

  return (
    <>
      <p>
        {report.steps} steps of {report.stepSeconds} s ({Math.round(report.durationMinutes)} min); capacity
        model: {report.capacity}.
        {"gapMinutes" in report && report.gapMinutes > 0
          ? ` ${report.gapMinutes} minutes of the window had no rollup and repeat the minute before.`
          : ""}
      </p>
      <fieldset className="range">
        <legend>Shade the provisioning gaps of</legend>
        {policyNames.map((name, index) => (
          <button key={name} type="button" aria-pressed={shaded === index} onClick={() => setShaded(index)}>
            {name}
          </button>
        ))}
      </fieldset>
      <div data-testid="simulation-chart">
        <Chart
          title={`Demand and supply (shaded: ${shadedName})`}
          data={data}
          series={series}
          bands={bands}
          height={280}
        />
      </div>
      <p className="hint" data-testid="shading-legend">
        <span className="swatch under" aria-hidden="true" /> Red: demand above {shadedName}'s supply
        (under-provisioned). <span className="swatch over" aria-hidden="true" /> Amber: {shadedName}'s supply
        above demand (over-provisioned).
      </p>
      <div className="table-scroll">
        <table data-testid="simulation-metrics">
          <caption>Elasticity metrics per row (lower is better); the oracle is the ideal</caption>
          <thead>
            <tr>
              <th scope="col">row</th>
              <th scope="col">kind</th>
              {COMPARED_METRICS.map((metric) => (
                <th key={metric} scope="col">
                  {metric}
                </th>
              ))}
              <th scope="col">apply</th>
            </tr>
          </thead>
          <tbody>
            {report.rows.map((row) => {
              const policyIndex = row.kind === "policy" ? policyNames.indexOf(row.name) : -1;
              return (
                <tr key={row.name} data-row-kind={row.kind}>
                  <th scope="row">{row.name}</th>
                  <td>{row.kind}</td>
                  {COMPARED_METRICS.map((metric) => (
                    <td key={metric}>{formatMetric(row.metrics[metric])}</td>
                  ))}
                  <td>
                    {policyIndex >= 0 ? (
                      <button
                        type="button"
                        disabled={apply.blocker !== null || apply.pendingName !== undefined}
                        aria-describedby={apply.blocker ? blockerId : undefined}
                        onClick={() => apply.onApply(policyIndex)}
                      >
                        {apply.pendingName === row.name
                          ? "Applying…"
                          : `Apply ${row.name}${apply.target ? ` to ${apply.target}` : ""}`}
                      </button>
                    ) : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {apply.blocker ? (
        <p id={blockerId} className="state" role="note">
          {apply.blocker}
        </p>
      ) : null}
    </>
  );
}
