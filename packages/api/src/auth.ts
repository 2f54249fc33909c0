import { type Role, type Tier, type TokenClaims, tokenClaimsSchema } from "@proxyscale/core";
import { createRemoteJWKSet, decodeProtectedHeader, type JWTPayload, jwtVerify, SignJWT } from "jose";

/** Where tokens are checked against: a shared HS256 secret, a JWKS of RS256/ES256 keys, or both. */
export interface AuthConfig {
  /** HS256 secret (PROXYSCALE_JWT_SECRET). */
  jwtSecret?: string | undefined;
  /** JWKS endpoint of an identity provider (PROXYSCALE_JWKS_URL). */
  jwksUrl?: string | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
  /** Allowed clock skew for exp/nbf. */
  clockToleranceSeconds?: number | undefined;
  /**
   * Longest lifetime a token may have (PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS), measured as exp − iat. When set, a
   * token without iat is refused, and so is one whose exp lies further than this from now (an iat set in the
   * future gains nothing). Unset: any lifetime.
   */
  maxTokenLifetimeSeconds?: number | undefined;
}

export interface VerifiedToken extends TokenClaims {
  expiresAt: number | undefined;
}

/** A token that is missing, malformed, forged, expired or not yet valid. The message says which; it never echoes the token. */
export class AuthenticationError extends Error {
  override name = "AuthenticationError";
}

export type TokenVerifier = (token: string) => Promise<VerifiedToken>;

const SECRET_ALGORITHMS = ["HS256"];
const VERIFIED_CACHE_SIZE = 10_000;
const JWKS_ALGORITHMS = ["RS256", "ES256"];

function secretKey(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

/**
 * Builds the verifier once (the JWKS is fetched lazily and cached by jose). `now` pins the clock for exp/nbf.
 * The algorithm is taken from the token header only to pick the key source; jose still enforces the allow-list,
 * so `alg: none` and an HS256 token signed with a public key are rejected.
 */
export function createTokenVerifier(config: AuthConfig, now: () => number = Date.now): TokenVerifier {
  if (!config.jwtSecret && !config.jwksUrl) {
    throw new Error("auth config needs PROXYSCALE_JWT_SECRET or PROXYSCALE_JWKS_URL");
  }
  const secret = config.jwtSecret ? secretKey(config.jwtSecret) : undefined;
  const jwks = config.jwksUrl ? createRemoteJWKSet(new URL(config.jwksUrl)) : undefined;
  // Verified tokens, so a client's repeated requests skip the signature check (a tenth of an evaluate's CPU).
  // A token stays valid from its first successful check until exp, which is re-checked on every hit.
  const verified = new Map<string, VerifiedToken>();

  return async (token) => {
    const cached = verified.get(token);
    if (cached && cached.expiresAt !== undefined) {
      if (now() < cached.expiresAt + (config.clockToleranceSeconds ?? 0) * 1000) return cached;
      verified.delete(token);
    }
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new AuthenticationError("token is not a JWT");
    }
    const options = {
      currentDate: new Date(now()),
      requiredClaims: ["exp"],
      clockTolerance: config.clockToleranceSeconds ?? 0,
      ...(config.issuer ? { issuer: config.issuer } : {}),
      ...(config.audience ? { audience: config.audience } : {}),
    };
    let payload: JWTPayload;
    try {
      if (alg !== undefined && SECRET_ALGORITHMS.includes(alg) && secret) {
        ({ payload } = await jwtVerify(token, secret, { ...options, algorithms: SECRET_ALGORITHMS }));
      } else if (alg !== undefined && JWKS_ALGORITHMS.includes(alg) && jwks) {
        ({ payload } = await jwtVerify(token, jwks, { ...options, algorithms: JWKS_ALGORITHMS }));
      } else {
        throw new AuthenticationError(`token algorithm ${JSON.stringify(alg ?? null)} is not accepted`);
      }
    } catch (error) {
      if (error instanceof AuthenticationError) throw error;
      throw new AuthenticationError(describeJoseError(error));
    }
    if (config.maxTokenLifetimeSeconds !== undefined) {
      checkLifetime(payload, config.maxTokenLifetimeSeconds, Math.floor(now() / 1000));
    }
    const claims = tokenClaimsSchema.safeParse(payload);
    if (!claims.success) {
      const fields = claims.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
      throw new AuthenticationError(`token claims are invalid (${fields.join("; ")})`);
    }
    const result = { ...claims.data, expiresAt: payload.exp === undefined ? undefined : payload.exp * 1000 };
    if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value as string);
    verified.set(token, result);
    return result;
  };
}

/** Refuses a token that lives longer than `max` seconds (exp − iat, or exp − now when that is longer). */
function checkLifetime(payload: JWTPayload, max: number, nowSeconds: number): void {
  const limit = `the server's limit of ${max} s (PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS)`;
  if (payload.iat === undefined) {
    throw new AuthenticationError(
      `token has no iat claim, so its lifetime cannot be checked against ${limit}`,
    );
  }
  const exp = payload.exp as number;
  const lifetime = Math.max(exp - payload.iat, exp - nowSeconds);
  if (lifetime > max) {
    throw new AuthenticationError(`token lifetime of ${lifetime} s (exp − iat) exceeds ${limit}`);
  }
}

function describeJoseError(error: unknown): string {
  const code = (error as { code?: string }).code;
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return "token has expired";
    case "ERR_JWT_CLAIM_VALIDATION_FAILED": {
      const claim = (error as { claim?: string }).claim;
      return claim === "nbf" ? "token is not valid yet (nbf)" : `token claim ${claim ?? "?"} is invalid`;
    }
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return "token signature is invalid";
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return "token algorithm is not accepted";
    case "ERR_JWKS_NO_MATCHING_KEY":
      return "token key is not in the JWKS";
    case "ERR_JWKS_TIMEOUT":
    case "ERR_JWKS_INVALID":
      return "the JWKS could not be loaded";
    default:
      return "token is invalid";
  }
}

/** Verifies one token against a config (builds a verifier per call; servers keep one from createTokenVerifier). */
export function verifyToken(token: string, config: AuthConfig, now?: () => number): Promise<VerifiedToken> {
  return createTokenVerifier(config, now)(token);
}

export interface SignTokenOptions {
  sub: string;
  role: Role;
  tier: Tier;
  secret: string;
  /** Lifetime: seconds, or a span such as "15m", "12h", "30d". Default 30 days. */
  expiresIn?: number | string;
  /** Epoch ms the token becomes valid (nbf). */
  notBefore?: number;
  /** Epoch ms used as iat. */
  now?: number;
}

/** Mints an HS256 token. Claims are validated first, so a token this returns always passes `verifyToken`'s claim check. */
export async function signToken(options: SignTokenOptions): Promise<string> {
  const claims = tokenClaimsSchema.parse({ sub: options.sub, role: options.role, tier: options.tier });
  const issuedAt = Math.floor((options.now ?? Date.now()) / 1000);
  const lifetimeSeconds = parseLifetime(options.expiresIn ?? "30d");
  const jwt = new SignJWT({ role: claims.role, tier: claims.tier })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.sub)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + lifetimeSeconds);
  if (options.notBefore !== undefined) jwt.setNotBefore(Math.floor(options.notBefore / 1000));
  return jwt.sign(secretKey(options.secret));
}

const SPAN_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** "30d" → 2592000. Throws on anything else so a typo never mints an immortal token. */
export function parseLifetime(span: number | string): number {
  if (typeof span === "number") {
    if (!Number.isInteger(span) || span <= 0)
      throw new Error(`token lifetime must be a positive whole number of seconds`);
    return span;
  }
  const match = /^(\d+)([smhd])$/.exec(span.trim());
  if (!match)
    throw new Error(`token lifetime ${JSON.stringify(span)} must look like 900, "15m", "12h" or "30d"`);
  const seconds = Number(match[1]) * SPAN_SECONDS[match[2] as keyof typeof SPAN_SECONDS];
  if (seconds <= 0) throw new Error("token lifetime must be positive");
  return seconds;
}
