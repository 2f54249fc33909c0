import type { AppRouter } from "@proxyscale/api";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import { createTRPCClient, TRPCClientError, type TRPCLink } from "@trpc/client";
import { observable } from "@trpc/server/observable";
import { createTRPCOptionsProxy } from "@trpc/tanstack-react-query";
import type { ReactNode } from "react";
import { createMemoryRouter, RouterProvider } from "react-router";
import { routes } from "../src/App.tsx";
import { signIn } from "../src/session.ts";
import { createQueryClient, TRPCProvider } from "../src/trpc.ts";

/** An unsigned token with ProxyScale's claims: the UI only reads claims, the server verifies signatures. */
export function fakeToken(claims: { sub: string; role: string; tier: string }, expiresInSeconds = 3600) {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const exp = Math.floor(Date.now() / 1000) + expiresInSeconds;
  return `${encode({ alg: "HS256", typ: "JWT" })}.${encode({ ...claims, exp })}.signature`;
}

export function signInAs(role: "viewer" | "operator" | "admin") {
  signIn(fakeToken({ sub: `${role}-user`, role, tier: "pro" }));
}

export type Answer =
  | unknown
  | {
      error: {
        httpStatus: number;
        message: string;
        zodIssues?: { path: (string | number)[]; message: string }[];
      };
    };
/** Procedure path ("proxies.get") → its answer; unknown paths fail the test loudly. */
export type Answers = Record<string, Answer | ((input: unknown) => Answer)>;

/** A tRPC link that answers from `answers` instead of a server: pages render with the real client and cache. */
function answersLink(answers: Answers, calls: { path: string; input: unknown }[]): TRPCLink<AppRouter> {
  return () =>
    ({ op }) =>
      observable((observer) => {
        calls.push({ path: op.path, input: op.input });
        const entry = answers[op.path];
        if (entry === undefined) {
          observer.error(
            TRPCClientError.from({ error: { message: `no answer for ${op.path}`, code: -32603, data: {} } }),
          );
          return;
        }
        const answer = typeof entry === "function" ? (entry as (input: unknown) => Answer)(op.input) : entry;
        if (answer && typeof answer === "object" && "error" in answer) {
          const { httpStatus, message, zodIssues } = (
            answer as { error: { httpStatus: number; message: string; zodIssues?: unknown[] } }
          ).error;
          observer.error(
            TRPCClientError.from({ error: { message, code: -32603, data: { httpStatus, zodIssues } } }),
          );
          return;
        }
        if (op.type === "subscription") return;
        observer.next({ result: { type: "data", data: answer } });
        observer.complete();
      });
}

/** A proxy as `proxies.get` and `proxies.list` answer it: one healthy push proxy of 2 replicas, `overrides` on top. */
export function proxyView(overrides: Record<string, unknown> = {}) {
  return {
    id: "00000000-0000-4000-8000-000000000001",
    name: "edge-1",
    ownerId: "operator-user",
    ownerTier: "pro",
    environment: "production",
    region: null,
    actuator: { kind: "none" },
    metricsSource: { kind: "push" },
    currentReplicas: 2,
    desiredReplicas: 2,
    health: "healthy",
    unhealthyReplicas: 0,
    createdAt: "2026-12-01T10:00:00.000Z",
    updatedAt: "2026-12-01T10:00:00.000Z",
    ...overrides,
  };
}

/** Renders `router` with the query and tRPC clients, its calls recorded in `calls`. */
function renderRouter(
  makeRouter: (
    trpcClient: ReturnType<typeof createTRPCClient<AppRouter>>,
  ) => ReturnType<typeof createMemoryRouter>,
  queryClient: QueryClient,
  answers: Answers,
) {
  const calls: { path: string; input: unknown }[] = [];
  const trpcClient = createTRPCClient<AppRouter>({ links: [answersLink(answers, calls)] });
  const view = render(
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        <RouterProvider router={makeRouter(trpcClient)} />
      </TRPCProvider>
    </QueryClientProvider>,
  );
  return { ...view, calls };
}

export function renderPage(
  element: ReactNode,
  { path, url, answers }: { path: string; url: string; answers: Answers },
) {
  return renderRouter(
    () => createMemoryRouter([{ path, element }], { initialEntries: [url] }),
    new QueryClient({ defaultOptions: { queries: { retry: false } } }),
    answers,
  );
}

/** The app's own routes and query client (its stale time included) at `url`, answered from `answers`. */
export function renderApp(url: string, answers: Answers) {
  const queryClient = createQueryClient();
  return renderRouter(
    (trpcClient) =>
      createMemoryRouter(routes(createTRPCOptionsProxy({ client: trpcClient, queryClient }), queryClient), {
        initialEntries: [url],
      }),
    queryClient,
    answers,
  );
}
