import { describe, expect, it } from 'vitest';
import {
  MiB,
  base64ToBytes,
  decideHistoryStart,
  describeEnd,
  errorMessage,
  isTransientStatus,
  parseDone,
  parseEventId,
  planChunk,
  reconnectDelay,
  streamUrl,
  tailSkip,
  textUrl,
} from './protocol';

describe('decideHistoryStart (tail loading)', () => {
  const policy = { thresholdBytes: 5 * MiB, tailBytes: 1 * MiB };
  it('loads an empty or small log whole', () => {
    expect(decideHistoryStart(0, policy)).toEqual({ start: 0, truncated: false });
    expect(decideHistoryStart(1234, policy)).toEqual({ start: 0, truncated: false });
  });
  it('loads a log exactly at the threshold whole', () => {
    expect(decideHistoryStart(5 * MiB, policy)).toEqual({ start: 0, truncated: false });
  });
  it('loads only the tail of a log over the threshold', () => {
    expect(decideHistoryStart(5 * MiB + 1, policy)).toEqual({ start: 4 * MiB + 1, truncated: true });
    expect(decideHistoryStart(100 * MiB, policy)).toEqual({ start: 99 * MiB, truncated: true });
  });
  it('treats nonsense sizes as empty', () => {
    expect(decideHistoryStart(Number.NaN, policy)).toEqual({ start: 0, truncated: false });
    expect(decideHistoryStart(-5, policy)).toEqual({ start: 0, truncated: false });
  });
});

describe('tailSkip', () => {
  const enc = new TextEncoder();
  it('starts a tail after its first newline', () => {
    expect(tailSkip(enc.encode('ial line\nnext\n'))).toBe(9);
  });
  it('skips UTF-8 continuation bytes when there is no newline', () => {
    const bytes = enc.encode('é abc').subarray(1); // starts mid-character
    expect(tailSkip(bytes)).toBe(1);
    expect(tailSkip(enc.encode('abc'))).toBe(0);
  });
  it('keeps at most maxLines whole lines', () => {
    const bytes = enc.encode('tial\nl1\nl2\nl3\n');
    expect(new TextDecoder().decode(bytes.subarray(tailSkip(bytes, 1024, 2)))).toBe('l2\nl3\n');
    expect(new TextDecoder().decode(bytes.subarray(tailSkip(bytes, 1024, 10)))).toBe('l1\nl2\nl3\n');
    const open = enc.encode('tial\nl1\nl2\npartial');
    expect(new TextDecoder().decode(open.subarray(tailSkip(open, 1024, 2)))).toBe('l2\npartial');
  });
});

describe('planChunk (resume offsets)', () => {
  it('writes a chunk that starts exactly where we are', () => {
    expect(planChunk(100, 110, 10)).toEqual({ kind: 'write', skip: 0, nextOffset: 110 });
  });
  it('writes only the new part of an overlapping chunk', () => {
    expect(planChunk(105, 110, 10)).toEqual({ kind: 'write', skip: 5, nextOffset: 110 });
  });
  it('drops a chunk we already have', () => {
    expect(planChunk(110, 110, 10)).toEqual({ kind: 'duplicate' });
    expect(planChunk(200, 110, 10)).toEqual({ kind: 'duplicate' });
  });
  it('reports a gap instead of writing past it', () => {
    expect(planChunk(100, 120, 10)).toEqual({ kind: 'gap', expected: 100, got: 110 });
  });
});

describe('parsers', () => {
  it('parses event ids strictly', () => {
    expect(parseEventId('42')).toBe(42);
    expect(parseEventId('')).toBeNull();
    expect(parseEventId(null)).toBeNull();
    expect(parseEventId('4x')).toBeNull();
    expect(parseEventId('-1')).toBeNull();
  });
  it('parses done', () => {
    expect(parseDone('{"exit_code": 3, "final_size": 99}')).toEqual({ exitCode: 3, finalSize: 99 });
    expect(parseDone('{"exit_code": null, "final_size": 0}')).toEqual({ exitCode: null, finalSize: 0 });
    expect(parseDone('garbage')).toEqual({ exitCode: null, finalSize: null });
  });
  it('decodes base64 to raw bytes without a text decode', () => {
    expect(Array.from(base64ToBytes('4pY='))).toEqual([0xe2, 0x96]); // half of a 3-byte char
    expect(base64ToBytes('').length).toBe(0);
  });
  it('builds the stream URL with the offset', () => {
    expect(streamUrl('/api', 'abc', 17)).toBe('/api/runs/abc/logs/stream?offset=17');
  });
  it('backs off reconnects, capped', () => {
    expect([0, 1, 2, 3, 10].map((a) => reconnectDelay(a))).toEqual([500, 1000, 2000, 4000, 10000]);
  });
  it('turns API errors into readable messages', () => {
    expect(errorMessage(409, { detail: 'run x is already active' })).toBe('run x is already active');
    expect(
      errorMessage(422, { detail: [{ loc: ['body', 'config'], msg: 'Field required', type: 'missing' }] }),
    ).toBe('config: Field required');
    expect(errorMessage(422, { detail: [{ loc: ['path', 'run_id'], msg: 'Input should be a valid UUID' }] })).toBe(
      'run_id: Input should be a valid UUID',
    );
    expect(errorMessage(500, null)).toBe('HTTP 500');
  });
});

describe('describeEnd (the viewer\'s last word on a run)', () => {
  it('an exit code, good or bad', () => {
    expect(describeEnd(0, 'succeeded')).toEqual({ text: 'Exited with code 0', tone: 'ok' });
    expect(describeEnd(3, 'failed')).toEqual({ text: 'Exited with code 3', tone: 'error' });
    expect(describeEnd(0, null)).toEqual({ text: 'Exited with code 0', tone: 'ok' });
  });
  it('never "Exited with code null"', () => {
    for (const status of [null, 'running', 'succeeded', 'failed', 'cancelled', 'lost', 'weird']) {
      expect(describeEnd(null, status).text).not.toMatch(/null/);
    }
    expect(describeEnd(null, null)).toEqual({ text: 'Ended without an exit code', tone: 'error' });
    expect(describeEnd(null, 'failed')).toEqual({ text: 'Failed without an exit code', tone: 'error' });
  });
  it('a lost runner, whatever the exit code', () => {
    expect(describeEnd(null, 'lost')).toEqual({ text: 'Runner lost', tone: 'error' });
  });
  it('a signal, by name', () => {
    expect(describeEnd(-9, 'failed')).toEqual({ text: 'Killed by SIGKILL', tone: 'error' });
    expect(describeEnd(-42, 'failed')).toEqual({ text: 'Killed by signal 42', tone: 'error' });
  });
  it('a cancel is not an error', () => {
    expect(describeEnd(-15, 'cancelled')).toEqual({ text: 'Cancelled (killed by SIGTERM)', tone: 'muted' });
    expect(describeEnd(1, 'cancelled')).toEqual({ text: 'Cancelled (exited with code 1)', tone: 'muted' });
    expect(describeEnd(null, 'cancelled')).toEqual({ text: 'Cancelled', tone: 'muted' });
  });
});

describe('isTransientStatus', () => {
  it('retries what may pass, not what will not', () => {
    expect([0, 408, 429, 500, 502, 503, 504].every(isTransientStatus)).toBe(true);
    expect([400, 401, 403, 404, 416, 422].some(isTransientStatus)).toBe(false);
  });
});

describe('download URLs', () => {
  it('raw bytes and plain text', () => {
    expect(textUrl('/api', 'a b')).toBe('/api/runs/a%20b/logs/text');
  });
});
