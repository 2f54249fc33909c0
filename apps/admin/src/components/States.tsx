import type { ReactNode } from "react";
import { statusOf } from "../trpc.ts";

export function Loading({ what }: { what: string }) {
  return (
    <p className="state" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

/** A failed call, said plainly: a 403 names the missing permission in the server's own words. */
export function ErrorState({ error, what }: { error: unknown; what: string }) {
  const status = statusOf(error);
  const message = error instanceof Error ? error.message : String(error);
  const title =
    status === 403
      ? `You may not see ${what}`
      : status === 404
        ? `${what} was not found`
        : `Could not load ${what}`;
  return (
    <div className="state error" role="alert">
      <strong>{title}</strong>
      <p>
        {status === undefined ? "" : `HTTP ${status}: `}
        {message}
      </p>
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="state empty">{children}</div>;
}

/**
 * The three states of a query, then its content: `render` only runs with data.
 */
export function QueryView<T>({
  query,
  what,
  render,
}: {
  query: { data: T | undefined; error: unknown; isPending: boolean };
  what: string;
  render: (data: T) => ReactNode;
}) {
  if (query.error) return <ErrorState error={query.error} what={what} />;
  if (query.isPending || query.data === undefined) return <Loading what={what} />;
  return <>{render(query.data)}</>;
}

/** A paged list's "more" button: shown while the server has another page. */
export function LoadMore({
  query,
  what,
}: {
  query: { hasNextPage: boolean; isFetchingNextPage: boolean; fetchNextPage: () => unknown };
  what: string;
}) {
  if (!query.hasNextPage) return null;
  return (
    <button
      type="button"
      className="load-more"
      disabled={query.isFetchingNextPage}
      onClick={() => query.fetchNextPage()}
    >
      {query.isFetchingNextPage ? `Loading more ${what}…` : `Load more ${what}`}
    </button>
  );
}
