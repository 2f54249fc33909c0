import { type ParseArgsConfig, parseArgs } from "node:util";
import { createProxyScaleClient, type ProxyScaleClient } from "../client.ts";

export const DEFAULT_URL = "http://127.0.0.1:8080";

/** Accepted by every command, before or after the command's name. */
export const GLOBAL_OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** Bad flags or arguments: exit code 2, with the command's usage. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A problem found before anything was sent (an invalid file, a missing secret): exit code 1. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly issues: Array<{ field: string; message: string }> = [],
  ) {
    super(message);
  }
}

/** What a command prints: `data` as JSON under --json, `text` otherwise. */
export interface Output {
  data: unknown;
  text: string;
}

export interface Session {
  /** The API client; asking for it without a token or a valid URL is a usage error (`token` never asks). */
  client(): ProxyScaleClient;
}

export interface Command {
  /** As typed: "proxies ls", "evaluate". */
  name: string;
  summary: string;
  /** Arguments and flags after the name, e.g. "<proxyId> [--limit N]". */
  usage: string;
  /** Examples shown by --help. */
  examples: string[];
  run(argv: string[], env: Record<string, string | undefined>): Promise<Output>;
}

/** --url, else PROXYSCALE_URL, else the default. */
export function serverUrl(flag: unknown, env: Record<string, string | undefined>): string {
  return typeof flag === "string" ? flag : (env.PROXYSCALE_URL ?? DEFAULT_URL);
}

type OptionsConfig = NonNullable<ParseArgsConfig["options"]>;

/** Parses a command's argv strictly (its own flags plus the global ones) and builds the session. */
export function parseCommand<const T extends OptionsConfig>(
  argv: string[],
  options: T,
  env: Record<string, string | undefined>,
) {
  const parse = () =>
    parseArgs({
      args: argv,
      options: { ...GLOBAL_OPTIONS, ...options } as typeof GLOBAL_OPTIONS & T,
      strict: true,
      allowPositionals: true,
    });
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  // The generic result type stays deferred inside this function; the global flags' types are known.
  const global = values as { url?: string; token?: string };
  const url = serverUrl(global.url, env);
  const token = global.token ?? env.PROXYSCALE_TOKEN;
  let client: ProxyScaleClient | undefined;
  const session: Session = {
    client() {
      if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
        throw new UsageError(`--url (or PROXYSCALE_URL) must be an http:// or https:// URL, got ${url}`);
      }
      if (!token) {
        throw new UsageError(
          "no token: pass --token or set PROXYSCALE_TOKEN (mint one with `proxyscale token`)",
        );
      }
      client ??= createProxyScaleClient({ url, token });
      return client;
    },
  };
  return { values, positionals, session };
}

/** The one positional argument a command takes, named in the error when it is missing or doubled. */
export function onePositional(positionals: string[], name: string): string {
  if (positionals.length === 0) throw new UsageError(`missing <${name}>`);
  if (positionals.length > 1)
    throw new UsageError(`expected one <${name}>, got ${positionals.length}: ${positionals.join(" ")}`);
  return positionals[0]!;
}

export function noPositionals(positionals: string[]): void {
  if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals.join(" ")}`);
}

/** A flag that must be a whole number in [min, max]. */
export function intFlag(
  value: string | undefined,
  flag: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  const min = range.min ?? Number.MIN_SAFE_INTEGER;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (value.trim() === "" || !Number.isInteger(number) || number < min || number > max) {
    const bounds = range.max === undefined ? `≥ ${min}` : `between ${min} and ${max}`;
    throw new UsageError(`--${flag} must be a whole number ${bounds}, got ${JSON.stringify(value)}`);
  }
  return number;
}

/** A flag that must be a finite number. */
export function numberFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (value.trim() === "" || !Number.isFinite(number)) {
    throw new UsageError(`--${flag} must be a number, got ${JSON.stringify(value)}`);
  }
  return number;
}
