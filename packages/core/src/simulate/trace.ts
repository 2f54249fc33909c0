/**
 * A request trace as in `../shared/traces/*.csv`: a header `t_seconds,requests`, then one row per step, where
 * `requests` is the COUNT of requests in the step that starts at `t_seconds` (not a rate). Steps are evenly
 * spaced. Pure: it takes the file's text, not a path.
 */
export interface Trace {
  /** `t_seconds` of the first row. */
  startSeconds: number;
  /** The spacing of the rows, in seconds. */
  stepSeconds: number;
  /** Request count per step. */
  requests: number[];
}

/** A malformed trace; `line` is the 1-based line of the text that broke the rule. */
export class TraceFormatError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`trace line ${line}: ${message}`);
    this.name = "TraceFormatError";
  }
}

const HEADER = "t_seconds,requests";

/**
 * Parses a trace's text. `stepSeconds` is needed only for a one-row trace (otherwise it is the spacing of the
 * first two rows, and every row must keep it). Blank lines are skipped; a trailing `\r` is accepted.
 */
export function parseTrace(text: string, options: { stepSeconds?: number } = {}): Trace {
  const lines = text.split("\n");
  let lineNo = 0;
  let header: string | undefined;
  const times: number[] = [];
  const requests: number[] = [];
  const lineOf: number[] = [];
  for (const raw of lines) {
    lineNo++;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") continue;
    if (header === undefined) {
      header = line.trim();
      if (header !== HEADER) throw new TraceFormatError(lineNo, `the header must be "${HEADER}"`);
      continue;
    }
    const cells = line.split(",");
    if (cells.length !== 2) throw new TraceFormatError(lineNo, "a row has two cells: t_seconds,requests");
    const t = Number(cells[0]);
    const count = Number(cells[1]);
    if (cells[0]!.trim() === "" || !Number.isFinite(t) || t < 0)
      throw new TraceFormatError(lineNo, "t_seconds must be a number ≥ 0");
    if (cells[1]!.trim() === "" || !Number.isFinite(count) || count < 0)
      throw new TraceFormatError(lineNo, "requests must be a count ≥ 0");
    times.push(t);
    requests.push(count);
    lineOf.push(lineNo);
  }
  if (header === undefined) throw new TraceFormatError(1, `the header must be "${HEADER}"`);
  if (times.length === 0) throw new TraceFormatError(lineNo, "a trace needs at least one row");
  let step = options.stepSeconds;
  if (times.length >= 2) {
    const spacing = times[1]! - times[0]!;
    if (!(spacing > 0)) throw new TraceFormatError(lineOf[1]!, "t_seconds must increase");
    if (step !== undefined && step !== spacing)
      throw new TraceFormatError(lineOf[1]!, `rows are ${spacing} s apart, not the given ${step} s`);
    step = spacing;
    for (let i = 2; i < times.length; i++) {
      const gap = times[i]! - times[i - 1]!;
      // Float spacing (0.1 s) is compared with a tolerance; the shared traces use whole seconds.
      if (Math.abs(gap - spacing) > 1e-9 * Math.max(1, spacing))
        throw new TraceFormatError(
          lineOf[i]!,
          `rows must be evenly spaced (${spacing} s), this one is ${gap} s`,
        );
    }
  }
  if (step === undefined || !(step > 0))
    throw new TraceFormatError(lineOf[0]!, "a one-row trace needs stepSeconds");
  return { startSeconds: times[0]!, stepSeconds: step, requests };
}
