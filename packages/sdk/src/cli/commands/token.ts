import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseLifetime, signToken } from "@proxyscale/api/auth";
import { DEFAULT_DATA_DIR, JWT_SECRET_FILE_NAME, ROLES, TIERS, tokenClaimsSchema } from "@proxyscale/core";
import { CliError, type Command, noPositionals, parseCommand, UsageError } from "../command.ts";
import { validate } from "../files.ts";

const OPTIONS = {
  secret: { type: "string" },
  "data-dir": { type: "string" },
  sub: { type: "string" },
  role: { type: "string", default: "viewer" },
  tier: { type: "string", default: "free" },
  expires: { type: "string" },
} as const;

const DEFAULT_LIFETIME = "30d";

/** PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS, the longest lifetime the server accepts; undefined when unset. */
function maxLifetime(env: Record<string, string | undefined>): number | undefined {
  const text = env.PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS?.trim();
  if (!text) return undefined;
  if (!/^\d+$/.test(text) || Number(text) <= 0) {
    throw new UsageError(
      `PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS must be a whole number of seconds (got ${text})`,
    );
  }
  return Number(text);
}

/** --secret, else PROXYSCALE_JWT_SECRET, else the secret file an embedded server created in its data dir. */
function findSecret(
  flag: string | undefined,
  dataDir: string | undefined,
  env: Record<string, string | undefined>,
) {
  const given = flag ?? env.PROXYSCALE_JWT_SECRET;
  if (given?.trim()) return given.trim();
  const path = join(resolve(dataDir ?? env.PROXYSCALE_DATA_DIR ?? DEFAULT_DATA_DIR), JWT_SECRET_FILE_NAME);
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    throw new CliError(
      `no JWT secret: pass --secret, set PROXYSCALE_JWT_SECRET, or point --data-dir (PROXYSCALE_DATA_DIR) at the server's data directory (${path} does not exist)`,
    );
  }
}

export const tokenCommand: Command = {
  name: "token",
  summary: "mint an HS256 JWT with the server's secret",
  usage: `--sub <user> [--role ${ROLES.join("|")}] [--tier ${TIERS.join("|")}] [--expires 30d (at most PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS)] [--secret S | --data-dir DIR]`,
  examples: [
    "proxyscale token --sub alice --role operator --tier pro",
    'PROXYSCALE_TOKEN="$(proxyscale token --sub ops --role admin --tier enterprise --expires 12h)"',
  ],
  async run(argv, env) {
    const { values, positionals } = parseCommand(argv, OPTIONS, env);
    noPositionals(positionals);
    if (!values.sub) throw new UsageError("missing --sub <user>: the user id the token is for");
    const claims = validate(
      tokenClaimsSchema,
      { sub: values.sub, role: values.role, tier: values.tier },
      "invalid token claims",
    );
    const expires = values.expires ?? DEFAULT_LIFETIME;
    let lifetimeSeconds: number;
    try {
      lifetimeSeconds = parseLifetime(/^\d+$/.test(expires) ? Number(expires) : expires);
    } catch (error) {
      throw new UsageError(`--expires: ${(error as Error).message}`);
    }
    // The server refuses tokens that live longer than its limit: an explicit --expires past it is an error, the
    // default is shortened to it.
    const max = maxLifetime(env);
    if (max !== undefined && lifetimeSeconds > max) {
      if (values.expires !== undefined) {
        throw new UsageError(
          `--expires ${expires} (${lifetimeSeconds} s) is longer than PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS (${max} s): ` +
            `the server would refuse the token; pass --expires ${max} or less`,
        );
      }
      lifetimeSeconds = max;
    }
    const secret = findSecret(values.secret, values["data-dir"], env);
    const now = Date.now();
    const token = await signToken({ ...claims, secret, expiresIn: lifetimeSeconds, now });
    const expiresAt = new Date(Math.floor(now / 1000) * 1000 + lifetimeSeconds * 1000).toISOString();
    return {
      data: { token, ...claims, expiresAt },
      // The bare token, so `$(proxyscale token ...)` captures it.
      text: token,
    };
  },
};
