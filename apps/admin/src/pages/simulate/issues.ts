import { fieldOf } from "../policy/form.ts";

/** A zod issue as the server returns it in `data.zodIssues`. */
export interface ServerIssue {
  path: (string | number)[];
  message: string;
}

/** Where the simulator shows each issue of a refused run: under the field it names, else in one list. */
export interface PlacedIssues {
  /** Per policy: its form's errors by field path. */
  policies: Record<string, string[]>[];
  /** Per policy: its name's errors. */
  names: string[][];
  trace: string[];
  window: string[];
  /** Issues no input shows, each prefixed with the field it names. */
  other: string[];
}

export function placeIssues(issues: readonly ServerIssue[], policyCount: number): PlacedIssues {
  const placed: PlacedIssues = {
    policies: Array.from({ length: policyCount }, () => ({})),
    names: Array.from({ length: policyCount }, () => []),
    trace: [],
    window: [],
    other: [],
  };
  for (const issue of issues) {
    const [head, index, part, ...rest] = issue.path;
    const policy = typeof index === "number" ? placed.policies[index] : undefined;
    if (head === "policies" && policy && part === "policy" && fieldOf(rest) !== "") {
      const field = fieldOf(rest);
      const inner = rest
        .map(String)
        .join(".")
        .slice(field.length + 1);
      policy[field] = [...(policy[field] ?? []), inner ? `${inner}: ${issue.message}` : issue.message];
    } else if (head === "policies" && typeof index === "number" && part === "name" && placed.names[index]) {
      placed.names[index].push(issue.message);
    } else if (head === "trace" || head === "points" || head === "stepSeconds") {
      placed.trace.push(issue.message);
    } else if (head === "from" || head === "to") {
      placed.window.push(`${head}: ${issue.message}`);
    } else {
      placed.other.push(`${issue.path.join(".") || "request"}: ${issue.message}`);
    }
  }
  return placed;
}
