import { useEffect, useState, type FormEvent } from 'react';
import { api } from '../api';
import { tokenUrl } from '../auth';

/** Shown instead of any page once the server has refused a request for want of its token. */
export function TokenPage() {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    document.title = 'Token needed · trainlog';
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) return;
    setBusy(true);
    setError(null);
    try {
      // Checked first: a wrong token handed to the server's /?token= gets a bare JSON 401 page.
      if (!(await api.checkToken(t))) {
        setError('That is not this server’s token.');
        return;
      }
    } catch {
      setError('Cannot reach the trainlog server.');
      return;
    } finally {
      setBusy(false);
    }
    window.location.assign(tokenUrl(window.location.pathname, window.location.search, t));
  };

  return (
    <main className="page">
      <div className="token-page" role="alert" data-testid="token-required">
        <svg className="token-icon" viewBox="0 0 24 24" width="30" height="30" aria-hidden>
          <rect x="4.5" y="10.5" width="15" height="10" rx="2" fill="none" stroke="currentColor" strokeWidth="1.6" />
          <path d="M8 10.5V7.5a4 4 0 0 1 8 0v3" fill="none" stroke="currentColor" strokeWidth="1.6" />
          <circle cx="12" cy="15.5" r="1.4" fill="currentColor" />
        </svg>
        <h1>This trainlog server needs a token</h1>
        <p>
          Open it once with <code className="mono">/?token=…</code> (the value of the server’s{' '}
          <code className="mono">TRAINLOG_API_TOKEN</code>); this browser then keeps it in a cookie and every page
          works.
        </p>
        <form className="token-form" onSubmit={(e) => void submit(e)}>
          <input
            type="password"
            autoComplete="off"
            aria-label="API token"
            placeholder="Paste the token"
            value={token}
            onChange={(e) => setToken(e.target.value)}
          />
          <button type="submit" className="btn btn-primary" disabled={busy || !token.trim()}>
            {busy ? 'Checking…' : 'Open'}
          </button>
        </form>
        {error && (
          <p className="token-error" data-testid="token-error">
            {error}
          </p>
        )}
      </div>
    </main>
  );
}
