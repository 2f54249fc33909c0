import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { CliError } from "./command.ts";

/** A JSON or YAML file (by extension; anything else is tried as JSON, then YAML). */
export function readDataFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(resolve(path), "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(
      `cannot read ${path}: ${code === "ENOENT" ? "no such file" : (error as Error).message}`,
    );
  }
  const isJson = /\.json$/i.test(path);
  const isYaml = /\.ya?ml$/i.test(path);
  try {
    if (isJson) return JSON.parse(text);
    if (isYaml) return parseYaml(text);
    try {
      return JSON.parse(text);
    } catch {
      return parseYaml(text);
    }
  } catch (error) {
    const format = isJson ? "JSON" : "YAML";
    throw new CliError(
      `${path} is not valid ${isYaml || isJson ? format : "JSON or YAML"}: ${(error as Error).message}`,
    );
  }
}

/** One entry per zod issue, named by its dotted path (zod's own message names unknown keys). */
export function fieldIssues(error: z.ZodError): Array<{ field: string; message: string }> {
  return error.issues.map((issue) => ({
    field: issue.path.map(String).join(".") || "(top level)",
    message: issue.message,
  }));
}

/** Parses `value` with `schema`; on failure a CliError with `message` and each field's issue. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, message: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new CliError(message, fieldIssues(parsed.error));
  return parsed.data;
}
