import { stringify } from "yaml";
import { isProxyScaleError, issuesOf, statusOf } from "../client.ts";
import { CliError, UsageError } from "./command.ts";

type Cell = string | number | boolean | null | undefined;

/** A number rounded to 2 decimals; "-" for none. */
export function num(value: number | null | undefined): string {
  return value === null || value === undefined ? "-" : String(Math.round(value * 100) / 100);
}

function cellText(value: Cell): string {
  if (value === null || value === undefined || value === "") return "-";
  if (typeof value === "number") return num(value);
  return String(value);
}

/** Aligned columns under upper-case headers; "(none)" for no rows. */
export function table<Row>(rows: readonly Row[], columns: Array<[header: string, cell: (row: Row) => Cell]>) {
  if (rows.length === 0) return "(none)";
  const cells = [
    columns.map(([header]) => header.toUpperCase()),
    ...rows.map((row) => columns.map(([, cell]) => cellText(cell(row)))),
  ];
  const widths = columns.map((_, index) => Math.max(...cells.map((line) => line[index]!.length)));
  return cells
    .map((line) =>
      line.map((text, index) => (index === line.length - 1 ? text : text.padEnd(widths[index]!))).join("  "),
    )
    .join("\n");
}

/** "label: value" lines with the values aligned. */
export function keyValues(pairs: Array<[label: string, value: Cell]>): string {
  const width = Math.max(...pairs.map(([label]) => label.length)) + 1;
  return pairs.map(([label, value]) => `${`${label}:`.padEnd(width)} ${cellText(value)}`).join("\n");
}

/** An ISO timestamp from the API as "2025-01-31 12:00:00Z". */
export function time(iso: string | null | undefined): string | undefined {
  if (!iso) return undefined;
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : date
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, "Z");
}

/** Nested values (policies, actuator configs) as YAML: the format people write them in. */
export function yaml(value: unknown): string {
  return stringify(value).trimEnd();
}

export function render(output: { data: unknown; text: string }, json: boolean): string {
  return json ? `${JSON.stringify(output.data, null, 2)}\n` : `${output.text}\n`;
}

export interface ErrorReport {
  message: string;
  status?: number;
  code?: string;
  issues: Array<{ field: string; message: string }>;
  exitCode: number;
}

/** What a failure means to the person (or script) running the CLI: the server's message, status and zod issues. */
export function describeFailure(error: unknown, url: string): ErrorReport {
  if (error instanceof UsageError) return { message: error.message, issues: [], exitCode: 2 };
  if (error instanceof CliError) return { message: error.message, issues: error.issues, exitCode: 1 };
  if (isProxyScaleError(error)) {
    const status = statusOf(error);
    if (status !== undefined) {
      const issues = issuesOf(error).map((issue) => ({ field: issue.field, message: issue.message }));
      return { message: error.message, status, code: error.data?.code, issues, exitCode: 1 };
    }
    // fetch rejects with a TypeError when no response arrives at all (refused, DNS, reset).
    if (error.cause instanceof TypeError) {
      const reason = error.cause.cause instanceof Error ? error.cause.cause.message : error.cause.message;
      return { message: `cannot reach ProxyScale at ${url}: ${reason}`, issues: [], exitCode: 1 };
    }
  }
  return { message: error instanceof Error ? error.message : String(error), issues: [], exitCode: 1 };
}

export function renderFailure(report: ErrorReport, json: boolean): string {
  if (json) {
    const { exitCode: _, ...error } = report;
    return `${JSON.stringify({ error }, null, 2)}\n`;
  }
  const status =
    report.status === undefined ? "" : ` (${report.status} ${report.code ?? ""})`.replace(" )", ")");
  // A server's input error already lists its issues in the message; local ones are listed here.
  const lines =
    report.status === undefined ? report.issues.map((issue) => `  ${issue.field}: ${issue.message}`) : [];
  return `proxyscale: ${report.message}${status}\n${lines.map((line) => `${line}\n`).join("")}`;
}
