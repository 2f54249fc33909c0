import { type FormEvent, useState } from "react";
import { Navigate, useLocation } from "react-router";
import { getEndReason, signIn, useSession } from "../session.ts";

export default function SignInPage() {
  const session = useSession();
  const location = useLocation();
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const from = (location.state as { from?: string } | null)?.from ?? "/";
  if (session) return <Navigate to={from} replace />;
  const reason = getEndReason();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    try {
      signIn(token);
    } catch (caught) {
      setError((caught as Error).message);
    }
  };

  return (
    <main id="main" className="sign-in">
      <h1>Sign in to ProxyScale</h1>
      {reason ? (
        <p className="state warning" role="status" data-testid="sign-in-reason">
          Signed out: {reason}.
        </p>
      ) : null}
      <p>
        Open the sign-in link the server printed at its first start (<code>http://HOST:PORT/#token=…</code>),
        or paste a token. Mint one with <code>npm run -s proxyscale -- token --role viewer --sub you</code>.
      </p>
      <form onSubmit={submit} aria-label="Sign in with a token">
        <label htmlFor="token">Token (JWT)</label>
        <textarea
          id="token"
          rows={4}
          value={token}
          aria-invalid={error !== null}
          aria-describedby={error ? "token-error" : undefined}
          onChange={(event) => {
            setToken(event.target.value);
            setError(null);
          }}
        />
        {error ? (
          <p id="token-error" className="field-error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" className="primary" disabled={token.trim() === ""}>
          Sign in
        </button>
      </form>
    </main>
  );
}
