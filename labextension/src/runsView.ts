/**
 * The runs view the panel hosts. VIEW_CONTRACT.md: the shared view is
 * `mlops_nb/static/runs_view.js` (anywidget front-end API, `export default { render }`).
 * Until it lands on this branch, this file holds a minimal table that follows the same
 * contract (traits payload / selected / sort / filter / status, actions through `send`), so
 * swapping it is one import here:
 *
 *   import runsView from '../../mlops_nb/static/runs_view.js';
 *   export default runsView;
 */
import type { IViewModel } from './model';
import {
  cellValue,
  EMPTY_PAYLOAD,
  formatValue,
  IPayload,
  nextSort
} from './state';

export interface IRunsView {
  render(ctx: { model: IViewModel; el: HTMLElement }): (() => void) | void;
}

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (cls) {
    node.className = cls;
  }
  if (text) {
    node.textContent = text; // always text: run names and values are never HTML
  }
  return node;
}

const placeholderView: IRunsView = {
  render({ model, el }) {
    el.classList.add('mnb-runs');
    const bar = h('div', 'mnb-runs-bar');
    const filter = h('input', 'mnb-filter jp-mod-styled');
    filter.type = 'search';
    filter.placeholder = 'filter: rf max_depth>3';
    filter.setAttribute('aria-label', 'filter runs');
    const exportBtn = h('button', 'jp-Button jp-mod-styled mnb-action', 'Export');
    exportBtn.dataset.action = 'export';
    const verifyBtn = h('button', 'jp-Button jp-mod-styled mnb-action', 'Reproduce');
    verifyBtn.dataset.action = 'verify';
    bar.append(filter, exportBtn, verifyBtn);
    const count = h('div', 'mnb-count');
    const scroller = h('div', 'mnb-table-scroll');
    const table = h('table', 'mnb-table');
    scroller.append(table);
    const status = h('div', 'mnb-view-status');
    el.append(bar, count, scroller, status);

    let timer: number | undefined;
    filter.addEventListener('input', () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(() => {
        model.set('filter', filter.value);
        model.save_changes();
      }, 250);
    });
    for (const btn of [exportBtn, verifyBtn]) {
      btn.addEventListener('click', () => {
        const ids = (model.get('selected') as string[]) ?? [];
        if (ids.length) {
          model.send({ action: btn.dataset.action, ids });
        }
      });
    }

    const draw = () => {
      const p = (model.get('payload') as IPayload) ?? EMPTY_PAYLOAD;
      const selected = new Set((model.get('selected') as string[]) ?? []);
      const best = new Set(p.best);
      const sort = (model.get('sort') as IPayload['sort']) ?? p.sort;
      exportBtn.disabled = verifyBtn.disabled = selected.size === 0;
      if (document.activeElement !== filter) {
        filter.value = (model.get('filter') as string) ?? '';
      }
      count.textContent = p.total
        ? `${p.total.toLocaleString()} run${p.total === 1 ? '' : 's'}` +
          (p.total !== p.all ? ` of ${p.all.toLocaleString()}` : '') +
          (p.truncated ? ` · first ${p.rows.length.toLocaleString()} shown` : '') +
          (p.metric ? ` · best by ${p.metric.replace('metrics.', '')} (${p.goal})` : '')
        : 'no runs yet: `%track on` in a notebook records them';
      const thead = h('thead');
      const hr = h('tr');
      hr.append(h('th', 'mnb-best-col', ''));
      for (const col of p.columns) {
        const th = h('th', `mnb-col-${col.kind}`, col.label);
        th.dataset.key = col.key;
        th.title = `sort by ${col.label}`;
        if (sort.key === col.key) {
          th.textContent = `${col.label} ${sort.ascending ? '▲' : '▼'}`;
          th.classList.add('mnb-sorted');
        }
        th.addEventListener('click', () => {
          model.set('sort', nextSort(sort, col));
          model.save_changes();
        });
        hr.append(th);
      }
      thead.append(hr);
      const tbody = h('tbody');
      const frag = document.createDocumentFragment();
      for (const row of p.rows) {
        const tr = h('tr', 'mnb-row');
        tr.dataset.runId = row.id;
        if (best.has(row.id)) {
          tr.classList.add('mnb-best');
        }
        if (selected.has(row.id)) {
          tr.classList.add('mnb-selected');
        }
        const star = h('td', 'mnb-best-col', best.has(row.id) ? '★' : '');
        if (best.has(row.id)) {
          star.title = 'best run';
        }
        tr.append(star);
        for (const col of p.columns) {
          const td = h('td', `mnb-col-${col.kind}`, formatValue(cellValue(row, col)));
          td.dataset.key = col.key;
          tr.append(td);
        }
        tr.addEventListener('click', (ev: MouseEvent) => {
          const ids = (model.get('selected') as string[]) ?? [];
          let next: string[];
          if (ev.ctrlKey || ev.metaKey) {
            next = ids.includes(row.id) ? ids.filter(i => i !== row.id) : [...ids, row.id];
          } else {
            next = [row.id];
          }
          model.set('selected', next);
          model.save_changes();
        });
        frag.append(tr);
      }
      tbody.append(frag);
      table.replaceChildren(thead, tbody);
      const chosen = table.querySelector('tr.mnb-selected');
      if (chosen && 'scrollIntoView' in chosen) {
        (chosen as HTMLElement).scrollIntoView({ block: 'nearest' });
      }
    };
    const drawStatus = () => {
      status.textContent = (model.get('status') as string) ?? '';
    };
    model.on('change:payload', draw);
    model.on('change:selected', draw);
    model.on('change:sort', draw);
    model.on('change:status', drawStatus);
    draw();
    drawStatus();
    return () => {
      model.off('change:payload', draw);
      model.off('change:selected', draw);
      model.off('change:sort', draw);
      model.off('change:status', drawStatus);
      el.replaceChildren();
    };
  }
};

export default placeholderView;
