import { describe, expect, it } from 'vitest';

import { RestModel } from './model';
import {
  appendPage,
  badgeText,
  EMPTY_PAYLOAD,
  IPayload,
  compareCell,
  formatValue,
  ICellRun,
  IExperiments,
  jobText,
  needsFetch,
  pickExperiment,
  verdictText
} from './state';

const run = (over: Partial<ICellRun> = {}): ICellRun => ({
  id: 'abcdef0123456789',
  is_run: true,
  status: 'ok',
  error: null,
  metrics: { f1: 0.912345, loss: 0.05 },
  name: null,
  execution_count: 3,
  experiment: 'churn',
  ...over
});

describe('formatValue', () => {
  it('keeps four significant digits and plain integers', () => {
    expect(formatValue(0.912345)).toBe('0.9123');
    expect(formatValue(42)).toBe('42');
    expect(formatValue(1e-7)).toBe('1.000e-7');
    expect(formatValue(null)).toBe('');
    expect(formatValue(true)).toBe('true');
  });
  it('shows hostile text as the text itself', () => {
    expect(formatValue('<img src=x onerror=alert(1)>')).toBe('<img src=x onerror=alert(1)>');
  });
});

describe('badges', () => {
  it('show the metrics, then how many more', () => {
    expect(badgeText(run())).toBe('f1=0.9123 loss=0.05');
    expect(badgeText(run({ metrics: { a: 1, b: 2, c: 3, d: 4 } }))).toBe('a=1 b=2 c=3 +1');
  });
  it('show the error of a failed run', () => {
    expect(badgeText(run({ status: 'error', error: { type: 'ZeroDivisionError' } }))).toBe(
      '✗ ZeroDivisionError'
    );
  });
  it('are empty for a cell run without metrics', () => {
    expect(badgeText(run({ metrics: {} }))).toBe('');
  });
});

describe('pickExperiment', () => {
  const info: IExperiments = {
    store: '.mlops_nb',
    notebook_experiment: 'nb',
    experiments: [
      { name: 'old', runs: 1, last_run_at: '2026-01-01T00:00:00', notebooks: [] },
      { name: 'nb', runs: 2, last_run_at: '2025-01-01T00:00:00', notebooks: ['nb.ipynb'] },
      { name: 'new', runs: 1, last_run_at: '2026-06-01T00:00:00', notebooks: [] }
    ]
  };
  it("defaults to the active notebook's experiment", () => {
    expect(pickExperiment(info, null)).toBe('nb');
  });
  it("keeps the user's choice while it exists", () => {
    expect(pickExperiment(info, 'old')).toBe('old');
    expect(pickExperiment(info, 'gone')).toBe('nb');
  });
  it('falls back to the most recent experiment', () => {
    expect(pickExperiment({ ...info, notebook_experiment: null }, null)).toBe('new');
    expect(pickExperiment({ ...info, experiments: [] }, null)).toBeNull();
  });
});

describe('compareCell', () => {
  it('ignores line endings and trailing spaces', () => {
    expect(compareCell('a = 1\r\nb = 2  \n', 'a = 1\nb = 2')).toBe('same');
  });
  it('marks an edited cell as changed and a deleted one as missing', () => {
    expect(compareCell('alpha = 0.5', 'alpha = 0.6')).toBe('changed');
    expect(compareCell('alpha = 0.5', null)).toBe('missing');
  });
});

describe('needsFetch (the view sorts and filters what it holds)', () => {
  const whole = { truncated: false, offset: 0 };
  const page = { truncated: true, offset: 0 };
  it('keeps sort and filter in the browser, even while the later pages load', () => {
    expect(needsFetch(['sort'], whole)).toBe(false);
    expect(needsFetch(['filter'], whole)).toBe(false);
    expect(needsFetch(['sort', 'filter'], page)).toBe(false);
    expect(needsFetch(['selected'], page)).toBe(false);
  });
  it('asks the server again for a new metric (best run and column order are its)', () => {
    expect(needsFetch(['metric'], whole)).toBe(true);
    expect(needsFetch(['metric'], page)).toBe(true);
  });
});

describe('appendPage (every run, page by page)', () => {
  const cols = [
    { key: 'id', label: 'id', kind: 'id' },
    { key: 'params.a', label: 'a', kind: 'param' }
  ] as any;
  const page = (offset: number, ids: string[], a: unknown[], total = 5) =>
    ({
      ...EMPTY_PAYLOAD,
      columns: cols,
      n: ids.length,
      total,
      all: total,
      offset,
      limit: 2,
      truncated: offset + ids.length < total,
      data: { id: ids, 'params.a': a },
      nones: { 'params.a': a.flatMap((v, j) => (v === null ? [j] : [])) },
      name_auto: ids.map(() => true)
    }) as IPayload;
  it('joins the pages column by column, None rows shifted to their place', () => {
    let acc = page(0, ['r0', 'r1'], [1, null]);
    acc = appendPage(acc, page(2, ['r2', 'r3'], [null, 4]))!;
    acc = appendPage(acc, page(4, ['r4'], [5]))!;
    expect(acc.n).toBe(5);
    expect(acc.truncated).toBe(false);
    expect(acc.data.id).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(acc.data['params.a']).toEqual([1, null, null, 4, 5]);
    expect(acc.nones['params.a']).toEqual([1, 2]);
    expect(acc.name_auto).toHaveLength(5);
  });
  it('refuses a page of another listing (the store changed in between)', () => {
    const acc = page(0, ['r0', 'r1'], [1, 2]);
    expect(appendPage(acc, page(3, ['r3'], [1]))).toBeNull();
    expect(appendPage(acc, page(2, ['r2'], [1], 6))).toBeNull();
    expect(appendPage(acc, { ...page(2, ['r2'], [1]), columns: [cols[0]] })).toBeNull();
  });
});

describe('jobs and verdicts', () => {
  it('say what a reproduce job is doing', () => {
    const job = {
      id: 'j',
      kind: 'reproduce',
      run_id: 'abcdef0123',
      elapsed_s: 3.4,
      result: null,
      error: null
    };
    expect(jobText({ ...job, state: 'running' })).toBe('reproducing abcdef01… 3 s');
    expect(jobText({ ...job, state: 'done', result: { ok: false, level: 'L1' } })).toBe(
      'abcdef01: NOT reproduced (level L1)'
    );
    expect(jobText({ ...job, state: 'failed', error: 'boom' })).toContain('boom');
    expect(verdictText({ level: 'L1', ok: false })).toBe('L1 ✗');
    expect(verdictText(null)).toBe('');
  });

  it('say what a noise job (reproduce --seeds) found', () => {
    const job = { id: 'j', kind: 'noise', run_id: 'abcdef0123', elapsed_s: 7.6, error: null };
    expect(jobText({ ...job, state: 'running', result: null })).toBe(
      'noise of abcdef01: seeded re-runs… 8 s'
    );
    const result = {
      seeds: 5,
      metrics: { f1: { spread: 0.0123456, std: 0.004 } },
      ties: { f1: ['a', 'b'] }
    } as any;
    expect(jobText({ ...job, state: 'done', result })).toBe(
      'noise of abcdef01 over 5 seeds: f1 spread 0.0123, 2 runs tied within noise'
    );
    expect(jobText({ ...job, state: 'failed', result: null, error: 'no export' })).toBe(
      'noise of abcdef01 failed: no export'
    );
  });
});

describe('RestModel (the view contract over REST)', () => {
  it('tells the backend what changed only on save_changes', () => {
    const model = new RestModel({ sort: { key: null, ascending: true } });
    const changes: string[][] = [];
    const heard: unknown[] = [];
    model.backend = { changed: names => changes.push(names), message: () => undefined };
    model.on('change:filter', v => heard.push(v));
    model.set('filter', 'rf');
    expect(heard).toEqual(['rf']);
    expect(changes).toEqual([]);
    model.save_changes();
    expect(changes).toEqual([['filter']]);
    model.save_changes();
    expect(changes).toEqual([['filter']]);
  });
  it('routes actions to the backend and replies as msg:custom', () => {
    const model = new RestModel();
    const sent: unknown[] = [];
    const replies: unknown[] = [];
    model.backend = { changed: () => undefined, message: m => sent.push(m) };
    model.on('msg:custom', m => replies.push(m));
    model.send({ action: 'export', ids: ['a'] });
    model.reply({ action: 'export', folder: 'exports/a' });
    expect(sent).toEqual([{ action: 'export', ids: ['a'] }]);
    expect(replies).toEqual([{ action: 'export', folder: 'exports/a' }]);
  });
  it('updates from the server without a round trip, and off() detaches', () => {
    const model = new RestModel();
    const changes: string[][] = [];
    const seen: unknown[] = [];
    const cb = (v: unknown) => seen.push(v);
    model.backend = { changed: names => changes.push(names), message: () => undefined };
    model.on('change:payload', cb);
    model.update('payload', 1);
    model.off('change:payload', cb);
    model.update('payload', 2);
    model.save_changes();
    expect(seen).toEqual([1]);
    expect(changes).toEqual([]);
    expect(model.get('payload')).toBe(2);
  });
});
