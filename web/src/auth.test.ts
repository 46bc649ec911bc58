import { describe, expect, it } from 'vitest';
import { tokenUrl } from './auth';

describe('tokenUrl', () => {
  it('adds the token to the current path, so the redirect comes back to the same page', () => {
    expect(tokenUrl('/', '', 's3cret')).toBe('/?token=s3cret');
    expect(tokenUrl('/runs/abc', '', 's3cret')).toBe('/runs/abc?token=s3cret');
    expect(tokenUrl('', '', 't')).toBe('/?token=t');
  });
  it('encodes it and keeps the rest of the query, replacing an old token', () => {
    expect(tokenUrl('/', '?a=1&token=old', 'x y&z=')).toBe('/?a=1&token=x+y%26z%3D');
  });
});
