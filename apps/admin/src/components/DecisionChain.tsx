import { type Decision, describeLimit, type Limit } from "@proxyscale/core";

/** The count a limit moved from and to, when the limit carries them (others explain without moving). */
function movement(limit: Limit): { from: number; to: number } | null {
  return "from" in limit && "to" in limit ? { from: limit.from, to: limit.to } : null;
}

/**
 * A decision as the chain recommended → every limit that changed or held the number → desired, with the
 * per-metric proposals and core's sentence. Every label comes from core (describeLimit, the stored explanation).
 */
export function DecisionChain({ decision }: { decision: Decision }) {
  return (
    <div className="decision">
      <ol className="chain" aria-label="How the count was decided">
        <li className="step">
          <span className="step-label">recommended</span> <strong>{decision.recommendedReplicas}</strong>
          <span className="muted"> by {decision.strategy}</span>
        </li>
        {decision.limits.map((limit, index) => {
          const moved = movement(limit);
          return (
            // Limits have no id of their own; their order in the pipeline is their identity.
            // biome-ignore lint/suspicious/noArrayIndexKey: the pipeline order is stable for a stored decision
            <li key={index} className="step limit" data-limit={limit.kind}>
              <span className="step-label">{limit.kind}</span> {describeLimit(limit)}
              {moved && moved.from !== moved.to ? (
                <span className="muted">
                  {" "}
                  ({moved.from} → {moved.to})
                </span>
              ) : null}
            </li>
          );
        })}
        <li className="step">
          <span className="step-label">desired</span> <strong>{decision.desiredReplicas}</strong>
          <span className="muted">
            {" "}
            ({decision.action === "none" ? "not scaled" : decision.action.replace("_", " ")}, current{" "}
            {decision.currentReplicas})
          </span>
        </li>
      </ol>
      {decision.metrics.length > 0 ? (
        <table className="proposals">
          <caption>Per-metric proposals</caption>
          <thead>
            <tr>
              <th scope="col">metric</th>
              <th scope="col">value</th>
              <th scope="col">target</th>
              <th scope="col">ratio</th>
              <th scope="col">proposed</th>
            </tr>
          </thead>
          <tbody>
            {decision.metrics.map((metric) => (
              <tr key={metric.metric}>
                <td>{metric.metric}</td>
                <td>{round(metric.value)}</td>
                <td>{round(metric.target)}</td>
                <td>
                  {round(metric.ratio, 2)}
                  {metric.withinTolerance ? " (within tolerance)" : ""}
                </td>
                <td>{metric.proposedReplicas}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <p className="sentence">{decision.explanation}</p>
    </div>
  );
}

function round(value: number, digits = 1): string {
  return value.toLocaleString(undefined, { maximumFractionDigits: digits });
}
