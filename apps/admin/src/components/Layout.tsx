import type { ReactNode } from "react";
import { NavLink, useNavigate } from "react-router";
import { signOut, useSession } from "../session.ts";

export function Layout({ children }: { children: ReactNode }) {
  const session = useSession();
  const navigate = useNavigate();
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">ProxyScale</span>
        <nav aria-label="Main">
          <NavLink to="/" end>
            Fleet
          </NavLink>
          <NavLink to="/simulate">Simulator</NavLink>
          <NavLink to="/audit">Audit log</NavLink>
        </nav>
        {session ? (
          <section className="who" aria-label="Signed in as">
            <span data-testid="who-sub">{session.claims.sub}</span>
            <span className="badge">{session.claims.role}</span>
            <span className="badge">{session.claims.tier}</span>
            <button
              type="button"
              onClick={() => {
                signOut("you signed out");
                navigate("/sign-in");
              }}
            >
              Sign out
            </button>
          </section>
        ) : null}
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}
