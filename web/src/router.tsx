/** A tiny History-API router: enough for `/` and `/runs/<id>`, back/forward and reloads. */
import { useEffect, useState, type AnchorHTMLAttributes, type MouseEvent } from 'react';

const listeners = new Set<() => void>();

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (opts.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  listeners.forEach((l) => l());
}

/** A part of the address, kept current through navigate() and back/forward. */
function useLocationPart(read: () => string): string {
  const [value, setValue] = useState(read);
  useEffect(() => {
    const update = () => setValue(read());
    listeners.add(update);
    window.addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
    };
    // `read` picks a fixed part of window.location: subscribing once is enough.
  }, []);
  return value;
}

export const usePathname = (): string => useLocationPart(() => window.location.pathname);

/** The address's query string (`?...`). */
export const useSearch = (): string => useLocationPart(() => window.location.search);

export function Link({ href, onClick, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const handle = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    if (href !== window.location.pathname) navigate(href);
  };
  return <a href={href} onClick={handle} {...rest} />;
}

export type Route = { name: 'runs' } | { name: 'run'; id: string } | { name: 'notFound' };

export function matchRoute(path: string): Route {
  if (path === '/' || path === '') return { name: 'runs' };
  const m = /^\/runs\/([^/]+)\/?$/.exec(path);
  if (m) return { name: 'run', id: decodeURIComponent(m[1]!) };
  return { name: 'notFound' };
}
