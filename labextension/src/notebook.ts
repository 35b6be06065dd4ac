/**
 * What the extension draws inside an open notebook: a badge on each cell with its last
 * tracked run, and the lineage of the selected run (cells marked; edited ones as changed).
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from './request';
import { badgeText, badgeTitle, compareCell, ICellRun, ILineage } from './state';

export const LINEAGE = 'mnb-lineage';
export const LINEAGE_RUN = 'mnb-lineage-run';
export const LINEAGE_CHANGED = 'mnb-lineage-changed';

export class NotebookDecorator {
  private lineage: ILineage | null = null;
  private runs: Record<string, ICellRun> = {};
  private timer: number | undefined = undefined;

  constructor(
    readonly panel: NotebookPanel,
    private onBadge: (run: ICellRun) => void,
    private settings: ServerConnection.ISettings
  ) {
    panel.content.model?.cells.changed.connect(() => this.redraw());
    // an edit can turn a lineage cell into "changed": redraw, at most every 300 ms
    panel.content.model?.contentChanged.connect(() => {
      if (this.timer === undefined) {
        this.timer = window.setTimeout(() => {
          this.timer = undefined;
          this.redraw();
        }, 300);
      }
    });
    panel.context.ready.then(() => this.refreshBadges());
  }

  get path(): string {
    return this.panel.context.path;
  }

  async refreshBadges(): Promise<void> {
    try {
      const res = await requestAPI<{ cells: Record<string, ICellRun> }>(
        'cells',
        {},
        { path: this.path },
        this.settings
      );
      this.runs = res.cells;
    } catch {
      this.runs = {};
    }
    this.redraw();
  }

  setLineage(lineage: ILineage | null): void {
    this.lineage = lineage && lineage.notebook === this.path ? lineage : null;
    this.redraw();
  }

  redraw(): void {
    if (this.panel.isDisposed) {
      return;
    }
    const marks = new Map<string, { run: boolean; code: string | null | undefined }>();
    for (const c of this.lineage?.cells ?? []) {
      if (c.cell_id) {
        marks.set(c.cell_id, { run: !!c.is_run, code: c.code });
      }
    }
    for (const cell of this.panel.content.widgets) {
      const id = cell.model.id;
      const node = cell.node;
      const mark = marks.get(id);
      node.classList.toggle(LINEAGE, !!mark);
      node.classList.toggle(LINEAGE_RUN, !!mark?.run);
      const changed =
        !!mark && compareCell(mark.code, cell.model.sharedModel.getSource()) === 'changed';
      node.classList.toggle(LINEAGE_CHANGED, changed);
      node.title = mark
        ? changed
          ? 'in the selected run\'s lineage; edited since that run'
          : 'in the selected run\'s lineage'
        : '';
      this.drawBadge(node, this.runs[id]);
    }
  }

  private drawBadge(node: HTMLElement, run: ICellRun | undefined): void {
    let badge = node.querySelector(':scope > .mnb-badge') as HTMLButtonElement | null;
    const text = run ? badgeText(run) : '';
    if (!text) {
      badge?.remove();
      return;
    }
    if (!badge) {
      badge = document.createElement('button');
      badge.className = 'mnb-badge';
      badge.addEventListener('click', ev => {
        ev.stopPropagation();
        const current = (badge as HTMLButtonElement & { run?: ICellRun }).run;
        if (current) {
          this.onBadge(current);
        }
      });
      node.append(badge);
    }
    (badge as HTMLButtonElement & { run?: ICellRun }).run = run;
    badge.textContent = text;
    badge.title = run ? badgeTitle(run) : '';
    badge.classList.toggle('mnb-badge-error', !!run?.error);
    badge.dataset.runId = run?.id ?? '';
  }
}
