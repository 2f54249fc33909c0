import type { AppRouter } from "@proxyscale/api";
import {
  infiniteQueryOptions,
  MutationCache,
  QueryCache,
  QueryClient,
  type QueryKey,
} from "@tanstack/react-query";
import {
  createTRPCClient,
  httpBatchStreamLink,
  httpLink,
  httpSubscriptionLink,
  isTRPCClientError,
  splitLink,
  type TRPCClientErrorLike,
} from "@trpc/client";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import { createTRPCContext } from "@trpc/tanstack-react-query";
import { getSession, signOut } from "./session.ts";

/**
 * The one module that talks to the server: the typed tRPC client (queries and mutations batched over HTTP, each
 * answer streamed as it is ready; subscriptions over SSE), the react-query cache, and what a rejected token does
 * (back to sign-in). Every type comes from the server's router.
 */

export type RouterOutputs = inferRouterOutputs<AppRouter>;
export type RouterInputs = inferRouterInputs<AppRouter>;
export type ApiError = TRPCClientErrorLike<AppRouter>;

export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>();

function bearer(): Record<string, string> {
  const session = getSession();
  return session ? { authorization: `Bearer ${session.token}` } : {};
}

export function createClient(baseUrl = "") {
  const url = `${baseUrl}/trpc`;
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === "subscription",
        // EventSource cannot send headers: the token travels as tRPC's connectionParams.
        true: httpSubscriptionLink({ url, connectionParams: () => ({ token: getSession()?.token ?? "" }) }),
        // A metrics range can be megabytes: alone, it does not hold up the small answers batched with it.
        false: splitLink({
          condition: (op) => op.path === "metrics.range",
          true: httpLink({ url, headers: bearer }),
          // Streamed: each answer of a batch arrives as it is ready, so a page's small queries do not wait for a
          // summary that aggregates every sample of its window.
          false: httpBatchStreamLink({ url, headers: bearer }),
        }),
      }),
    ],
  });
}

/** The HTTP status of a failed call, when the server answered. */
export function statusOf(error: unknown): number | undefined {
  return isTRPCClientError<AppRouter>(error) ? error.data?.httpStatus : undefined;
}

function onError(error: unknown) {
  // 401: the server no longer accepts the token (expired, revoked, signed with another secret).
  if (statusOf(error) === 401) signOut(`the server rejected your token: ${(error as Error).message}`);
}

export function createQueryClient() {
  return new QueryClient({
    queryCache: new QueryCache({ onError }),
    mutationCache: new MutationCache({ onError }),
    defaultOptions: {
      queries: {
        // 4xx answers (forbidden, not found, bad input) will not change on retry.
        retry: (count, error) => (statusOf(error) ?? 500) >= 500 && count < 2,
        refetchOnWindowFocus: false,
        staleTime: 5_000,
      },
    },
  });
}

/**
 * A cursor-paged list ("Load more"). Not tRPC's infiniteQueryOptions: it adds `direction` to the input, which the
 * server's strict inputs refuse. The key is tRPC's infinite key, so invalidating the procedure's path reaches it.
 */
export function pagedQueryOptions<Page extends { nextCursor?: string | null }>(
  queryKey: QueryKey,
  fetchPage: (cursor: string | undefined) => Promise<Page>,
) {
  return infiniteQueryOptions({
    queryKey,
    queryFn: ({ pageParam }) => fetchPage(pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (page) => page.nextCursor ?? undefined,
  });
}
