import { QueryClientProvider } from "@tanstack/react-query";
import { lazy, Suspense, useState } from "react";
import { createBrowserRouter, Navigate, Outlet, RouterProvider, useLocation } from "react-router";
import { Layout } from "./components/Layout.tsx";
import { Loading } from "./components/States.tsx";
import { useSession } from "./session.ts";
import { createClient, createQueryClient, TRPCProvider } from "./trpc.ts";

// One chunk per page: the first page loads only what it uses.
const FleetPage = lazy(() => import("./pages/Fleet.tsx"));
const ProxyPage = lazy(() => import("./pages/Proxy.tsx"));
const PolicyPage = lazy(() => import("./pages/Policy.tsx"));
const OperatePage = lazy(() => import("./pages/Operate.tsx"));
const AuditPage = lazy(() => import("./pages/Audit.tsx"));
const SignInPage = lazy(() => import("./pages/SignIn.tsx"));

function page(element: React.ReactNode) {
  return <Suspense fallback={<Loading what="the page" />}>{element}</Suspense>;
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

export const routes = [
  { path: "/sign-in", element: page(<SignInPage />) },
  {
    element: <RequireSession />,
    children: [
      { path: "/", element: page(<FleetPage />) },
      { path: "/proxies/:proxyId", element: page(<ProxyPage />) },
      { path: "/proxies/:proxyId/policy", element: page(<PolicyPage />) },
      { path: "/proxies/:proxyId/operate", element: page(<OperatePage />) },
      { path: "/audit", element: page(<AuditPage />) },
      { path: "*", element: <Navigate to="/" replace /> },
    ],
  },
];

export function App() {
  const [queryClient] = useState(createQueryClient);
  const [trpcClient] = useState(() => createClient());
  const [router] = useState(() => createBrowserRouter(routes));
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        <RouterProvider router={router} />
      </TRPCProvider>
    </QueryClientProvider>
  );
}
