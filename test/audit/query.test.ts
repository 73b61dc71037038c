import { describe, expect, it } from 'vitest';
import { indexFieldsOf, parseEventFilter } from '../../src/audit/query.js';
import { RampartError } from '../../src/core/errors.js';

describe('audit event filters', () => {
  it('normalizes RFC 3339 times to the stored form', () => {
    expect(parseEventFilter({ since: '2026-11-24T09:00:00+01:00', until: '2026-11-24T08:30:00Z' })).toEqual({
      since: '2026-11-24T08:00:00.000Z',
      until: '2026-11-24T08:30:00.000Z',
    });
  });

  it('accepts principals and resources as Cedar entity references or bare ids', () => {
    expect(parseEventFilter({ principal: 'Rampart::Token::"abc"', resource: 'Rampart::Workload::"spiffe://d/x"' })).toEqual({
      principal: 'abc',
      resource: 'spiffe://d/x',
    });
    expect(parseEventFilter({ principal: 'abc', action: 'token:create', outcome: 'denied' })).toEqual({
      principal: 'abc',
      action: 'token:create',
      outcome: 'denied',
    });
  });

  it.each([{ since: 'yesterday' }, { until: '1700000000' }, { since: '2026-13-40T00:00:00Z' }, { outcome: 'maybe' }])(
    'refuses %j with request.invalid',
    (q) => {
      let caught: unknown;
      try {
        parseEventFilter(q);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(RampartError);
      expect((caught as RampartError).code).toBe('request.invalid');
    },
  );

  it('derives the indexed fields from a stored payload', () => {
    const payload = JSON.stringify({
      time: '2026-11-24T08:00:00.000Z',
      principal: { type: 'Rampart::Token', id: 'acc', tenant: 'default', auth_method: 'token' },
      action: 'token:create',
      resource: { type: 'Rampart::Collection', id: 'default/tokens' },
      outcome: 'success',
    });
    expect(indexFieldsOf(payload)).toEqual({
      eventTime: '2026-11-24T08:00:00.000Z',
      principalId: 'acc',
      action: 'token:create',
      resource: 'default/tokens',
      outcome: 'success',
    });
    expect(indexFieldsOf(JSON.stringify({ time: 't', principal: null, action: null, resource: null, outcome: 'unauthenticated' }))).toEqual({
      eventTime: 't',
      principalId: null,
      action: null,
      resource: null,
      outcome: 'unauthenticated',
    });
  });
});
