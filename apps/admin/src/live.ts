import { useQueryClient } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import { useState } from "react";
import { useTRPC } from "./trpc.ts";

/**
 * Server-pushed changes (tRPC subscription over SSE): each one invalidates the queries it makes stale, so the
 * open page refetches what changed, no polling. Returns when the last change arrived.
 */
export function useLiveUpdates(proxyId?: string) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [lastChangeAt, setLastChangeAt] = useState<number | null>(null);
  const subscription = useSubscription(
    trpc.live.onChange.subscriptionOptions(proxyId ? { proxyId } : {}, {
      onData(change) {
        setLastChangeAt(Date.now());
        const keys =
          change.kind === "decision"
            ? [trpc.scaling.decisions.pathKey(), trpc.proxies.pathKey()]
            : change.kind === "event"
              ? [trpc.scaling.events.pathKey(), trpc.proxies.pathKey(), trpc.scaling.summary.pathKey()]
              : [trpc.metrics.pathKey()];
        for (const queryKey of keys) void queryClient.invalidateQueries({ queryKey });
      },
    }),
  );
  return { status: subscription.status, error: subscription.error, lastChangeAt };
}
