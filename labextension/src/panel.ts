/**
 * The Experiments sidebar panel: experiment picker, the shared runs view (hosted through
 * RestModel), the selected run's details, and the Export / Reproduce / Report actions.
 */
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import { ServerConnection } from '@jupyterlab/services';

import { RestModel } from './model';
import { postAPI, requestAPI } from './request';
// The one runs view (VIEW_CONTRACT.md): the file the notebook widget and the HTML report use.
import runsView from '../../mlops_nb/static/runs_view.js';
import {
  EMPTY_PAYLOAD,
  formatValue,
  IExperiments,
  IJob,
  ILineage,
  IPayload,
  appendPage,
  jobText,
  needsFetch,
  pickExperiment,
  verdictText
} from './state';

export interface IPanelHost {
  /** Open a file (the export's train.py) in an editor tab. */
  openFile(path: string): void;
  /** Show the HTML report in a main-area tab. */
  openReport(html: string, title: string): void;
  /** Jump to a notebook cell by its id. */
  goToCell(notebook: string, cellId: string): void;
}

/** Runs per fetch. The first page is small (a screenful and then some, sorted best first by
 * the server) so the panel paints at once; the rest follow in pages of the server's maximum
 * until the view holds every run (it sorts, filters and plots them in the browser and draws
 * only the rows in sight). */
const FIRST_PAGE = 500;
const PAGE = 5000;

/** Resolves once the browser has painted what was just rendered (or soon, in a hidden tab,
 * where animation frames pause). */
function afterPaint(): Promise<void> {
  return new Promise(resolve => {
    const done = () => setTimeout(resolve, 0);
    const timer = setTimeout(done, 100);
    requestAnimationFrame(() => {
      clearTimeout(timer);
      done();
    });
  });
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (cls) {
    node.className = cls;
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}

export class ExperimentsPanel extends Widget {
  readonly model = new RestModel({
    payload: EMPTY_PAYLOAD,
    selected: [],
    sort: { key: null, ascending: true },
    filter: '',
    status: ''
  });
  /** The selected run changed (its lineage, or null): notebooks highlight it. */
  readonly lineageChanged = new Signal<this, ILineage | null>(this);
  /** The store changed (a new run, a verdict): badges refresh. */
  readonly storeChanged = new Signal<this, void>(this);

  private notebookPath = '';
  private chosenExperiment: string | null = null;
  private experiment: string | null = null;
  private token: string | null = null;
  private select = el('select', 'mnb-experiment jp-mod-styled');
  private details = el('div', 'mnb-details');
  private viewHost = el('div', 'mnb-view-host');
  private disposeView: (() => void) | void = undefined;
  private disposed_ = false;
  private loadSeq = 0;
  private loading: AbortController | null = null;
  private polling = new Set<string>();

  constructor(
    private host: IPanelHost,
    private settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {
    super();
    this.id = 'mlops-nb-experiments';
    this.addClass('mnb-panel');
    this.title.caption = 'Experiments (mlops-nb)';
    const header = el('div', 'mnb-header');
    const label = el('label', 'mnb-label', 'Experiment');
    label.append(this.select);
    const report = el('button', 'jp-Button jp-mod-styled mnb-report', 'Report');
    report.title = 'open the HTML comparison report of this experiment';
    report.addEventListener('click', () => void this.openReport());
    header.append(label, report);
    this.node.append(header, this.viewHost, this.details);
    this.select.addEventListener('change', () => {
      this.chosenExperiment = this.select.value || null;
      this.experiment = this.chosenExperiment;
      this.model.update('selected', []);
      void this.loadRuns();
    });
    this.model.backend = {
      changed: names => this.onModelChange(names),
      message: msg => void this.onAction(msg)
    };
    this.disposeView = runsView.render({ model: this.model, el: this.viewHost });
    void this.refresh();
    void this.feed();
    void this.resumeJobs();
  }

  dispose(): void {
    this.disposed_ = true;
    this.loading?.abort();
    if (typeof this.disposeView === 'function') {
      this.disposeView();
    }
    super.dispose();
  }

  /** The active notebook changed: its experiment becomes the default. A renamed notebook
   * keeps the experiment shown: its runs so far carry the old path. */
  setNotebook(path: string, opts: { renamed?: boolean } = {}): void {
    if (path === this.notebookPath) {
      return;
    }
    this.notebookPath = path;
    this.chosenExperiment = opts.renamed ? this.experiment : null;
    void this.refresh();
  }

  get currentPayload(): IPayload {
    return (this.model.get('payload') as IPayload) ?? EMPTY_PAYLOAD;
  }

  /** Select a run by id (a badge was clicked): switch to its experiment when needed. */
  async selectRun(id: string, experiment: string | null): Promise<void> {
    if (experiment && experiment !== this.experiment) {
      this.chosenExperiment = experiment;
      await this.refresh();
    }
    this.model.update('selected', [id]);
    await this.showRun(id);
  }

  /** The experiment list, then the chosen experiment's runs. After a store change
   * (`storeChanged`) the runs of the experiment shown are asked for at the same time: the
   * first page need not wait for the list. */
  async refresh(storeChanged = false): Promise<void> {
    const shown = this.experiment;
    const runs = storeChanged && shown !== null ? this.loadRuns() : null;
    try {
      const info = await requestAPI<IExperiments>(
        'experiments',
        {},
        { path: this.notebookPath },
        this.settings
      );
      this.experiment = pickExperiment(info, this.chosenExperiment);
      this.select.replaceChildren(
        ...info.experiments.map(e => {
          const opt = el('option', '', `${e.name} (${e.runs})`);
          opt.value = e.name;
          opt.selected = e.name === this.experiment;
          return opt;
        })
      );
      if (runs === null || this.experiment !== shown) {
        await this.loadRuns();
      } else {
        await runs;
      }
    } catch (error) {
      this.status(`could not list experiments: ${(error as Error).message}`);
    }
  }

  /** One page of the shown experiment's runs in the server's default order. */
  private page(offset: number, limit: number, signal: AbortSignal): Promise<IPayload> {
    return requestAPI<IPayload>(
      'runs',
      { signal },
      {
        path: this.notebookPath,
        experiment: this.experiment,
        metric: (this.model.get('metric') as string) ?? null,
        goal: (this.model.get('goal') as string) ?? null,
        offset: offset ? String(offset) : null,
        limit
      },
      this.settings
    );
  }

  /** The first page, painted as soon as it arrives; the rest follow in the background. A
   * newer listing (a store change, another experiment or metric) aborts this one's requests. */
  async loadRuns(): Promise<void> {
    const seq = ++this.loadSeq;
    this.loading?.abort();
    const loading = new AbortController();
    this.loading = loading;
    if (this.experiment === null) {
      this.model.update('payload', EMPTY_PAYLOAD);
      return;
    }
    const started = performance.now();
    try {
      const acc = await this.page(0, FIRST_PAGE, loading.signal);
      if (seq !== this.loadSeq) {
        return; // a newer request superseded this one
      }
      this.model.update('payload', acc);
      this.node.dataset.loadMs = String(Math.round(performance.now() - started));
      if (acc.problems.length) {
        this.status(`skipped unreadable store files: ${acc.problems.join('; ')}`);
      }
      if (acc.truncated) {
        // after the first page is on screen: the browser paints before the next request
        await afterPaint();
        if (seq === this.loadSeq) {
          void this.loadRest(seq, acc, started, loading.signal);
        }
      }
    } catch (error) {
      if (seq === this.loadSeq && !loading.signal.aborted) {
        this.status((error as Error).message);
      }
    }
  }

  /** The pages after the first, in the background: the view gets every run once all are in
   * (one re-render, not one per page); a newer listing or a store change stops this one. */
  private async loadRest(
    seq: number,
    acc: IPayload,
    started: number,
    signal: AbortSignal
  ): Promise<void> {
    try {
      while (acc.truncated) {
        this.status(
          `loading runs… ${acc.n.toLocaleString('en-US')} of ${acc.total.toLocaleString('en-US')}`
        );
        const next = await this.page(acc.n, PAGE, signal);
        if (seq !== this.loadSeq) {
          return;
        }
        const merged = appendPage(acc, next);
        if (merged === null) {
          void this.loadRuns(); // the store changed while paging: start over
          return;
        }
        acc = merged;
      }
      this.model.update('payload', acc);
      this.node.dataset.allMs = String(Math.round(performance.now() - started));
      this.status('');
    } catch (error) {
      if (seq === this.loadSeq && !signal.aborted) {
        this.status(`could not load every run: ${(error as Error).message}`);
      }
    }
  }

  private status(text: string): void {
    this.model.update('status', text);
  }

  private onModelChange(names: string[]): void {
    if (needsFetch(names, this.currentPayload)) {
      void this.loadRuns();
    }
    if (names.includes('selected')) {
      const ids = this.model.get('selected') as string[];
      void this.showRun(ids.length ? ids[ids.length - 1] : null);
    }
  }

  private async onAction(msg: Record<string, unknown>): Promise<void> {
    const ids = (msg.ids as string[]) ?? [];
    switch (msg.action) {
      case 'export':
        for (const id of ids) {
          await this.exportRun(id, !!msg.overwrite);
        }
        break;
      case 'verify':
        for (const id of ids) {
          await this.reproduce(id);
        }
        break;
      case 'noise':
        await this.reproduce(ids[0], Number(msg.seeds) || 5);
        break;
      case 'diff':
        await this.diff(ids);
        break;
      case 'select_metric':
        this.model.update('metric', msg.metric ?? null);
        this.model.update('goal', msg.goal ?? null);
        await this.loadRuns();
        break;
      default:
        this.status(`unknown action ${String(msg.action)}`);
    }
  }

  async exportRun(id: string, force = false): Promise<void> {
    this.status(`exporting ${id.slice(0, 8)}…`);
    try {
      const out = await postAPI<{ folder: string; train_py: string }>(
        `runs/${id}/export`,
        { path: this.notebookPath, force },
        this.settings
      );
      this.status(`exported to ${out.folder}/`);
      this.model.reply({ action: 'export', ids: [id], folder: out.folder });
      this.host.openFile(out.train_py);
    } catch (error) {
      const e = error as Error & { status?: number };
      if (e.status === 409 && !force) {
        // the view asks (Overwrite / Keep it) and sends the export again with overwrite
        this.status(e.message);
        this.model.reply({ type: 'confirm', action: 'export', ids: [id], text: `${e.message} Overwrite it?` });
        return;
      }
      this.status(`export refused: ${e.message}`);
    }
  }

  /** Two ticked runs: what differs, answered as the widget answers (a `diff` message). */
  private async diff(ids: string[]): Promise<void> {
    if (ids.length !== 2) {
      return;
    }
    try {
      const out = await requestAPI<{ type: string; ids: string[]; code: string }>(
        'diff',
        {},
        { path: this.notebookPath, a: ids[0], b: ids[1] },
        this.settings
      );
      this.model.reply(out);
    } catch (error) {
      this.status(`diff: ${(error as Error).message}`);
    }
  }

  /** Verify a run, or with `seeds` measure its noise (`reproduce --seeds N`), as a server job. */
  async reproduce(id: string, seeds?: number): Promise<void> {
    if (!id) {
      this.status('tick a run first');
      return;
    }
    try {
      const job = await postAPI<IJob>(
        `runs/${id}/reproduce`,
        seeds ? { path: this.notebookPath, seeds } : { path: this.notebookPath },
        this.settings
      );
      this.status(jobText(job));
      void this.pollJob(job.id);
    } catch (error) {
      this.status(`${seeds ? 'noise' : 'reproduce'}: ${(error as Error).message}`);
    }
  }

  /** Jobs live on the server: after a reload, pick up the ones still running. */
  private async resumeJobs(): Promise<void> {
    try {
      const { jobs } = await requestAPI<{ jobs: IJob[] }>('jobs', {}, {}, this.settings);
      for (const job of jobs) {
        if (job.state === 'queued' || job.state === 'running') {
          void this.pollJob(job.id);
        }
      }
    } catch {
      // the panel works without them
    }
  }

  private async pollJob(jobId: string): Promise<void> {
    if (this.polling.has(jobId)) {
      return;
    }
    this.polling.add(jobId);
    try {
      while (!this.disposed_) {
        const job = await requestAPI<IJob>(`jobs/${jobId}`, {}, {}, this.settings);
        this.status(jobText(job));
        if (job.state === 'done' || job.state === 'failed') {
          this.model.reply({ action: job.kind === 'noise' ? 'noise' : 'verify', ids: [job.run_id], job });
          await this.loadRuns();
          const sel = this.model.get('selected') as string[];
          if (sel.includes(job.run_id)) {
            await this.showRun(job.run_id);
          }
          return;
        }
        await new Promise(r => setTimeout(r, 1000));
      }
    } catch (error) {
      this.status(`lost track of a reproduce job: ${(error as Error).message}`);
    } finally {
      this.polling.delete(jobId);
    }
  }

  async openReport(): Promise<void> {
    if (this.experiment === null) {
      this.status('no runs to report on yet');
      return;
    }
    this.status('writing the report…');
    try {
      const { html } = await requestAPI<{ html: string }>(
        'report',
        {},
        { path: this.notebookPath, experiment: this.experiment },
        this.settings
      );
      this.host.openReport(html, `Report: ${this.experiment}`);
      this.status('');
    } catch (error) {
      this.status(`report: ${(error as Error).message}`);
    }
  }

  /** The change feed: a long-poll that answers as soon as the store changes. */
  private async feed(): Promise<void> {
    while (!this.disposed_) {
      try {
        const res = await requestAPI<{ token: string; changed: boolean }>(
          'changes',
          {},
          { path: this.notebookPath, since: this.token, timeout: 25 },
          this.settings
        );
        const first = this.token === null;
        this.token = res.token;
        if (res.changed && !first) {
          await this.refresh(true);
          this.storeChanged.emit();
        }
      } catch {
        await new Promise(r => setTimeout(r, 2000));
      }
    }
  }

  private async showRun(id: string | null): Promise<void> {
    if (id === null) {
      this.details.replaceChildren();
      this.lineageChanged.emit(null);
      return;
    }
    try {
      const [run, lineage] = await Promise.all([
        requestAPI<Record<string, any>>(`runs/${id}`, {}, { path: this.notebookPath }, this.settings),
        requestAPI<ILineage>(`runs/${id}/lineage`, {}, { path: this.notebookPath }, this.settings)
      ]);
      this.renderDetails(run, lineage);
      this.lineageChanged.emit(lineage);
    } catch (error) {
      this.status(`run ${id.slice(0, 8)}: ${(error as Error).message}`);
    }
  }

  private renderDetails(run: Record<string, any>, lineage: ILineage): void {
    const box = this.details;
    const title = el('div', 'mnb-details-title');
    title.append(
      el('b', '', run.name ? `${run.name}` : 'run'),
      el('code', '', ` ${String(run.id).slice(0, 12)}`)
    );
    const actions = el('div', 'mnb-details-actions');
    const exp = el('button', 'jp-Button jp-mod-styled', 'Export');
    exp.addEventListener('click', () => void this.exportRun(run.id));
    const rep = el('button', 'jp-Button jp-mod-styled', 'Reproduce');
    rep.addEventListener('click', () => void this.reproduce(run.id));
    actions.append(exp, rep);
    const verdict = el('div', 'mnb-verdict');
    verdict.textContent = run.verdict
      ? `verdict: ${verdictText(run.verdict)} (${run.verdict.ok ? 'reproduced' : 'not reproduced'})`
      : 'verdict: not checked yet';
    box.replaceChildren(
      title,
      actions,
      verdict,
      section('Metrics', run.metrics, true),
      section('Parameters', run.params, true),
      section('Data', run.data_fingerprints, true),
      section('Environment', run.environment, false),
      this.lineageSection(lineage)
    );
    if (run.error) {
      box.append(el('pre', 'mnb-error', `${run.error.type}: ${run.error.message}`));
    }
  }

  private lineageSection(lineage: ILineage): HTMLElement {
    const det = el('details', 'mnb-section mnb-lineage-list');
    det.open = true;
    det.append(el('summary', '', `Lineage (${lineage.cells.length} cell runs)`));
    const ul = el('ul');
    for (const c of lineage.cells) {
      const li = el('li');
      const label = c.missing
        ? `${c.id.slice(0, 8)} (not in the session log)`
        : `In [${c.execution_count ?? ' '}]${c.is_run ? ' (this run)' : ''}`;
      li.append(el('span', '', label));
      if (c.cell_id && lineage.notebook) {
        const go = el('button', 'mnb-link', 'go to cell');
        go.dataset.cellId = c.cell_id;
        go.addEventListener('click', () => this.host.goToCell(lineage.notebook!, c.cell_id!));
        li.append(' ', go);
      }
      ul.append(li);
    }
    det.append(ul);
    return det;
  }
}

function section(title: string, values: Record<string, unknown> | null, open: boolean) {
  const det = el('details', 'mnb-section');
  det.open = open;
  const entries = Object.entries(values ?? {});
  det.append(el('summary', '', `${title} (${entries.length})`));
  const table = el('table', 'mnb-kv');
  for (const [k, v] of entries) {
    const tr = el('tr');
    tr.append(el('th', '', k), el('td', '', formatValue(v)));
    table.append(tr);
  }
  det.append(table);
  return det;
}
