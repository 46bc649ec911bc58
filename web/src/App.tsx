import { matchRoute, usePathname, Link } from './router';
import { RunsPage } from './pages/RunsPage';
import { RunPage } from './pages/RunPage';
import { TokenPage } from './pages/TokenPage';
import { useTokenRequired } from './auth';

export function App() {
  const route = matchRoute(usePathname());
  const tokenRequired = useTokenRequired();
  return (
    <div className="app">
      <header className="topbar">
        <Link href="/" className="brand">
          <span className="brand-mark" aria-hidden>
            ▍
          </span>
          trainlog
        </Link>
        <span className="muted topbar-tag">live training logs</span>
      </header>
      {tokenRequired && <TokenPage />}
      {!tokenRequired && route.name === 'runs' && <RunsPage />}
      {!tokenRequired && route.name === 'run' && <RunPage key={route.id} id={route.id} />}
      {!tokenRequired && route.name === 'notFound' && (
        <main className="page">
          <div className="empty">
            <div className="empty-title">Page not found</div>
            <Link href="/">Go to the runs</Link>
          </div>
        </main>
      )}
    </div>
  );
}
