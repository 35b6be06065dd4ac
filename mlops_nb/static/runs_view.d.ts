// Types of runs_view.js for the JupyterLab extension's TypeScript build (labextension/), which
// imports this very file: the panel, the notebook widget and the report share one view.
export interface RunsViewModel {
  get(name: string): unknown;
  set(name: string, value: unknown): void;
  save_changes(): void;
  on(event: string, cb: (...args: any[]) => void): void;
  off(event?: string | null, cb?: ((...args: any[]) => void) | null): void;
  send(msg: unknown): void;
}
export function render(ctx: { model: RunsViewModel; el: HTMLElement }): () => void;
declare const view: { render: typeof render };
export default view;
