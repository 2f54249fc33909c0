// Core's auth module alone: the entry chunk then carries none of core's other schemas (the pages that use them load them).
import { type Role, roleAtLeast, type TokenClaims, tokenClaimsSchema } from "@proxyscale/core/auth";
import { decodeJwt } from "jose";
import { useSyncExternalStore } from "react";

/**
 * The signed-in user: the bearer token and the claims it carries. The claims are read (not verified) only to
 * shape the UI; the server verifies the token on every call and its answer is what counts.
 */
export interface Session {
  token: string;
  claims: TokenClaims;
  /** Expiry, epoch ms, when the token has one. */
  expiresAt: number | null;
}

const STORAGE_KEY = "proxyscale.token";

type Listener = () => void;
const listeners = new Set<Listener>();
let current: Session | null = null;
/** Why the last session ended (expired, rejected by the server, signed out), for the sign-in page. */
let endReason: string | null = null;
let expiryTimer: ReturnType<typeof setTimeout> | undefined;

/** Reads a token's claims; throws with a readable reason when it is not a ProxyScale token or has expired. */
export function parseToken(token: string, now = Date.now()): Session {
  let payload: ReturnType<typeof decodeJwt>;
  try {
    payload = decodeJwt(token.trim());
  } catch {
    throw new Error("that is not a JWT (expected three base64url parts separated by dots)");
  }
  const claims = tokenClaimsSchema.safeParse(payload);
  if (!claims.success) {
    const issue = claims.error.issues[0];
    throw new Error(`the token's ${issue?.path.join(".") || "claims"} ${issue?.message ?? "are invalid"}`);
  }
  const expiresAt = typeof payload.exp === "number" ? payload.exp * 1000 : null;
  if (expiresAt !== null && expiresAt <= now) {
    throw new Error(`the token expired at ${new Date(expiresAt).toLocaleString()}`);
  }
  return { token: token.trim(), claims: claims.data, expiresAt };
}

function emit() {
  for (const listener of listeners) listener();
}

export function signIn(token: string): Session {
  const session = parseToken(token);
  current = session;
  endReason = null;
  localStorage.setItem(STORAGE_KEY, session.token);
  clearTimeout(expiryTimer);
  // setTimeout takes at most 2^31-1 ms (~24 days); a longer-lived token is checked again by the server anyway.
  const remaining = session.expiresAt === null ? null : session.expiresAt - Date.now();
  if (remaining !== null && remaining < 2 ** 31 - 1) {
    expiryTimer = setTimeout(() => signOut("your token has expired; sign in with a new one"), remaining);
  }
  emit();
  return session;
}

export function signOut(reason: string | null = null) {
  current = null;
  endReason = reason;
  clearTimeout(expiryTimer);
  localStorage.removeItem(STORAGE_KEY);
  emit();
}

export function getSession(): Session | null {
  return current;
}

export function getEndReason(): string | null {
  return endReason;
}

/**
 * At start: a `#token=` fragment (the server's first-start sign-in link) wins over the stored token. The
 * fragment is removed from the address bar at once, so it is neither bookmarked nor shared.
 */
export function restoreSession(location: Location = window.location, history: History = window.history) {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const fromLink = fragment.get("token");
  if (fromLink !== null) {
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(
      history.state,
      "",
      `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`,
    );
  }
  const token = fromLink ?? localStorage.getItem(STORAGE_KEY);
  if (token === null) return;
  try {
    signIn(token);
  } catch (error) {
    signOut(
      `the ${fromLink !== null ? "sign-in link's" : "stored"} token was refused: ${(error as Error).message}`,
    );
  }
}

function subscribe(listener: Listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function useSession(): Session | null {
  return useSyncExternalStore(subscribe, getSession, getSession);
}

/** Whether the signed-in user has at least `role` (core's role order). */
export function useCan(role: Role): boolean {
  const session = useSession();
  return session !== null && roleAtLeast(session.claims.role, role);
}
