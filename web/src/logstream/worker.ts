/**
 * The SharedWorker every trainlog tab of an origin shares: one StreamMux (one connection) per
 * API base, serving each tab's viewers through its port. See shared.ts.
 */
import { PageTransport, type FromWorker, type ToWorker } from './shared';

interface Port {
  postMessage(message: FromWorker): void;
  onmessage: ((ev: MessageEvent<ToWorker>) => void) | null;
  start(): void;
}

const transport = new PageTransport();

(self as unknown as { onconnect: (ev: MessageEvent) => void }).onconnect = (connected) => {
  const port = connected.ports[0] as unknown as Port;
  const closers = new Map<number, () => void>();
  const close = (key: number) => {
    closers.get(key)?.();
    closers.delete(key);
  };
  port.onmessage = ({ data: message }) => {
    if (message.op === 'open') {
      close(message.key);
      const { key } = message;
      closers.set(key, transport.open(message.apiBase, message.runId, message.offset, (event) => port.postMessage({ key, event })));
    } else if (message.op === 'close') {
      close(message.key);
    } else {
      for (const key of [...closers.keys()]) close(key);
    }
  };
  port.start();
};
