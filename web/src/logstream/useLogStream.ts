import { useEffect, useRef, useState } from 'react';
import {
  type ByteSink,
  INITIAL_LOG_STREAM_STATE as INITIAL,
  LogStreamController,
  type LogStreamOptions,
  type LogStreamState,
} from './controller';

export type UseLogStreamOptions = Omit<LogStreamOptions, 'runId' | 'sink' | 'onState'>;

/**
 * Stream one run's log (history, then SSE) into `sink`. A new `runId` starts over; unmount
 * closes the connection. `sink` may change between renders: the latest one is used.
 * Pass `enabled: false` to wait (e.g. until the terminal exists).
 */
export function useLogStream(
  runId: string,
  sink: ByteSink,
  enabled = true,
  options: UseLogStreamOptions = {},
): LogStreamState {
  const [state, setState] = useState<LogStreamState>(INITIAL);
  const sinkRef = useRef(sink);
  sinkRef.current = sink;
  const optionsRef = useRef(options);
  optionsRef.current = options;

  useEffect(() => {
    if (!enabled) return undefined;
    setState(INITIAL);
    const controller = new LogStreamController({
      ...optionsRef.current,
      runId,
      sink: (bytes) => sinkRef.current(bytes),
      onTermCols: (cols) => optionsRef.current.onTermCols?.(cols),
      onState: setState,
    });
    controller.start();
    return () => controller.dispose();
  }, [runId, enabled]);

  return state;
}
