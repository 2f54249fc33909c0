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

export function renderPage(
  element: ReactNode,
  { path, url, answers }: { path: string; url: string; answers: Answers },
) {
  const calls: { path: string; input: unknown }[] = [];
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const trpcClient = createTRPCClient<AppRouter>({ links: [answersLink(answers, calls)] });
  const router = createMemoryRouter([{ path, element }], { initialEntries: [url] });
  const view = render(
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        <RouterProvider router={router} />
      </TRPCProvider>
    </QueryClientProvider>,
  );
  return { ...view, calls };
}

/** The app's own routes and query client (its stale time included) at `url`, answered from `answers`. */
export function renderApp(url: string, answers: Answers) {
  const calls: { path: string; input: unknown }[] = [];
  const queryClient = createQueryClient();
  const trpcClient = createTRPCClient<AppRouter>({ links: [answersLink(answers, calls)] });
  const router = createMemoryRouter(
    routes(createTRPCOptionsProxy({ client: trpcClient, queryClient }), queryClient),
    {
      initialEntries: [url],
    },
  );
  const view = render(
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        <RouterProvider router={router} />
      </TRPCProvider>
    </QueryClientProvider>,
  );
  return { ...view, calls };
}
