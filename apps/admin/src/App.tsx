import type { AppRouter } from "@proxyscale/api";
import { type QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createTRPCOptionsProxy, type TRPCOptionsProxy } from "@trpc/tanstack-react-query";
import type { ComponentType } from "react";
import { createBrowserRouter, Navigate, Outlet, RouterProvider, useLocation, useParams } from "react-router";
import { Layout } from "./components/Layout.tsx";
import { Loading } from "./components/States.tsx";
import { proxyPageLoader } from "./pages/proxy-queries.ts";
import { useSession } from "./session.ts";
import { createClient, createQueryClient, TRPCProvider } from "./trpc.ts";

/**
 * One chunk per page, loaded by the router before it renders the route (react-router's `lazy`), so the first page
 * loads only what it uses. Unlike React.lazy inside Suspense, no fallback is committed first, so React 19's
 * 300 ms throttle on revealing suspended content never delays the page (or the queries it starts).
 */
function page(load: () => Promise<{ default: ComponentType }>) {
  return async () => ({ Component: (await load()).default });
}

/** Signed-in pages: without a session, the sign-in page, which returns here afterwards. */
function RequireSession() {
  const session = useSession();
  const location = useLocation();
  if (!session) {
    return <Navigate to="/sign-in" replace state={{ from: `${location.pathname}${location.search}` }} />;
  }
  return (
    <Layout>
      <Outlet />
    </Layout>
  );
}

/** The simulator's per-proxy address: the simulator page with that proxy picked. */
function ProxySimulator() {
  const { proxyId = "" } = useParams();
  return <Navigate to={`/simulate?proxy=${encodeURIComponent(proxyId)}`} replace />;
}

/** The app's routes; loaders start a page's queries through `trpc` into `queryClient`. */
export const routes = (trpc: TRPCOptionsProxy<AppRouter>, queryClient: QueryClient) => [
  { path: "/sign-in", lazy: page(() => import("./pages/SignIn.tsx")) },
  {
    element: <RequireSession />,
    hydrateFallbackElement: <Loading what="the page" />,
    children: [
      { path: "/", lazy: page(() => import("./pages/Fleet.tsx")) },
      {
        path: "/proxies/:proxyId",
        loader: proxyPageLoader(trpc, queryClient),
        lazy: page(() => import("./pages/Proxy.tsx")),
      },
      { path: "/proxies/:proxyId/policy", lazy: page(() => import("./pages/Policy.tsx")) },
      { path: "/proxies/:proxyId/operate", lazy: page(() => import("./pages/Operate.tsx")) },
      { path: "/proxies/:proxyId/simulate", element: <ProxySimulator /> },
      { path: "/simulate", lazy: page(() => import("./pages/Simulate.tsx")) },
      { path: "/audit", lazy: page(() => import("./pages/Audit.tsx")) },
      { path: "*", element: <Navigate to="/" replace /> },
    ],
  },
];

/** The app's clients and router. Creating the router runs the first route's loader, so its queries start here. */
export function createAdmin() {
  const queryClient = createQueryClient();
  const trpcClient = createClient();
  const router = createBrowserRouter(
    routes(createTRPCOptionsProxy({ client: trpcClient, queryClient }), queryClient),
  );
  return { queryClient, trpcClient, router };
}

export type Admin = ReturnType<typeof createAdmin>;

export function App({ queryClient, trpcClient, router }: Admin) {
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        <RouterProvider router={router} />
      </TRPCProvider>
    </QueryClientProvider>
  );
}
