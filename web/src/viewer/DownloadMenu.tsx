/**
 * <DownloadMenu runId />: the run's log as a download, raw or as plain text. Part of the
 * viewer (imports only React and ../logstream), so any app can use it next to the viewer.
 */
import { useEffect, useId, useRef, useState } from 'react';
import { rawUrl, textUrl } from '../logstream';
import './DownloadMenu.css';

export interface DownloadMenuProps {
  runId: string;
  apiBase?: string;
  label?: string;
  /** Extra classes for the button (e.g. the host app's button style). */
  buttonClassName?: string;
  /** Which way the menu opens from the button. */
  align?: 'left' | 'right';
  testId?: string;
}

export function DownloadMenu({
  runId,
  apiBase = '/api',
  label = 'Download',
  buttonClassName = '',
  align = 'right',
  testId = 'download-menu',
}: DownloadMenuProps) {
  const [open, setOpen] = useState(false);
  const rootRef = useRef<HTMLDivElement | null>(null);
  const menuId = useId();

  useEffect(() => {
    if (!open) return undefined;
    const onPointer = (e: PointerEvent) => {
      if (!rootRef.current?.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') setOpen(false);
    };
    document.addEventListener('pointerdown', onPointer);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('pointerdown', onPointer);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);

  // Close after the browser has followed the link (not during the click).
  const chosen = () => setTimeout(() => setOpen(false), 0);

  return (
    <div className="tl-dl" ref={rootRef} data-testid={testId}>
      <button
        type="button"
        className={`tl-dl-button ${buttonClassName}`.trim()}
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls={open ? menuId : undefined}
        onClick={() => setOpen((o) => !o)}
      >
        {label} <span aria-hidden>▾</span>
      </button>
      {open && (
        <div className={`tl-dl-menu tl-dl-${align}`} role="menu" id={menuId}>
          <a role="menuitem" href={rawUrl(apiBase, runId)} download onClick={chosen}>
            <span className="tl-dl-title">Raw log</span>
            <span className="tl-dl-hint">The exact bytes, colours and progress redraws included</span>
          </a>
          <a role="menuitem" href={textUrl(apiBase, runId)} download onClick={chosen}>
            <span className="tl-dl-title">Plain text</span>
            <span className="tl-dl-hint">As the terminal left it: no escape codes, one line per finished bar</span>
          </a>
        </div>
      )}
    </div>
  );
}

export default DownloadMenu;
