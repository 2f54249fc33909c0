import { type QueryKey, useQueryClient } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import { useEffect, useRef, useState } from "react";
import { useTRPC } from "./trpc.ts";

/**
 * Changes arriving within this window are refetched together: a fleet whose proxies all push every second
 * costs one refetch of each stale query per window, not one per change. Well inside "a second or two behind".
 */
const COALESCE_MS = 200;

/**
 * Server-pushed changes (tRPC subscription over SSE): each one invalidates the queries it makes stale, so the
 * open page refetches what changed, no polling. Returns the connection's state and when the last change arrived.
 */
export function useLiveUpdates(proxyId?: string) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [lastChangeAt, setLastChangeAt] = useState<number | null>(null);
  const pending = useRef(new Map<string, QueryKey>());
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);

  const subscription = useSubscription(
    trpc.live.onChange.subscriptionOptions(proxyId ? { proxyId } : {}, {
      onData(change) {
        const keys =
          change.kind === "decision"
            ? [trpc.scaling.decisions.pathKey(), trpc.proxies.pathKey()]
            : change.kind === "event"
              ? [trpc.scaling.events.pathKey(), trpc.proxies.pathKey(), trpc.scaling.summary.pathKey()]
              : [trpc.metrics.pathKey()];
        for (const key of keys) pending.current.set(JSON.stringify(key), key);
        timer.current ??= setTimeout(() => {
          timer.current = undefined;
          const stale = [...pending.current.values()];
          pending.current.clear();
          setLastChangeAt(Date.now());
          for (const queryKey of stale) void queryClient.invalidateQueries({ queryKey });
        }, COALESCE_MS);
      },
    }),
  );
  return { status: subscription.status, error: subscription.error, lastChangeAt };
}
