import { lazy, Suspense } from 'react';
import { matchRoute, usePathname, Link } from './router';
import { RunsPage } from './pages/RunsPage';
import { TokenPage } from './pages/TokenPage';
import { useTokenRequired } from './auth';

// The run page (xterm.js, the viewer, uPlot charts) is most of the app's code: loaded only when
// a run is opened, so the runs page paints without downloading and compiling it.
const RunPage = lazy(() => import('./pages/RunPage').then((m) => ({ default: m.RunPage })));

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
      {!tokenRequired && route.name === 'run' && (
        <Suspense fallback={<main className="page" aria-busy="true" />}>
          <RunPage key={route.id} id={route.id} />
        </Suspense>
      )}
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
