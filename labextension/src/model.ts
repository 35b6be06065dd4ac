/**
 * The anywidget-style model the shared runs view renders from (VIEW_CONTRACT.md), backed by
 * the server's REST API instead of a kernel: `set` + `save_changes` of sort/filter refetch the
 * page, `send({action})` becomes a POST, and replies come back as trait changes or
 * `msg:custom` messages, as they would from the Python widget.
 */

type Callback = (...args: unknown[]) => void;

export interface IViewModel {
  get(name: string): unknown;
  set(name: string, value: unknown): void;
  save_changes(): void;
  on(event: string, cb: Callback): void;
  off(event?: string | null, cb?: Callback | null): void;
  send(msg: unknown): void;
}

export interface IModelBackend {
  /** Called after save_changes with the traits that changed since the last save. */
  changed(names: string[]): void;
  /** A message from the view (an action). */
  message(msg: Record<string, unknown>): void;
}

export class RestModel implements IViewModel {
  private traits = new Map<string, unknown>();
  private dirty = new Set<string>();
  private listeners = new Map<string, Set<Callback>>();
  backend: IModelBackend | null = null;

  constructor(initial: Record<string, unknown> = {}) {
    for (const [k, v] of Object.entries(initial)) {
      this.traits.set(k, v);
    }
  }

  get(name: string): unknown {
    return this.traits.get(name);
  }

  /** Change a trait from the view: listeners hear it now, the backend on save_changes. */
  set(name: string, value: unknown): void {
    this.traits.set(name, value);
    this.dirty.add(name);
    this.emit(`change:${name}`, value);
  }

  save_changes(): void {
    const names = [...this.dirty];
    this.dirty.clear();
    if (names.length && this.backend) {
      this.backend.changed(names);
    }
  }

  /** Change a trait from the host (server data): listeners hear it, no backend round trip. */
  update(name: string, value: unknown): void {
    this.traits.set(name, value);
    this.emit(`change:${name}`, value);
  }

  on(event: string, cb: Callback): void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(cb);
  }

  off(event?: string | null, cb?: Callback | null): void {
    if (!event) {
      this.listeners.clear();
      return;
    }
    if (!cb) {
      this.listeners.delete(event);
      return;
    }
    this.listeners.get(event)?.delete(cb);
  }

  send(msg: unknown): void {
    if (this.backend && msg && typeof msg === 'object') {
      this.backend.message(msg as Record<string, unknown>);
    }
  }

  /** A reply to the view, as `msg:custom` from a kernel-backed widget. */
  reply(msg: unknown): void {
    this.emit('msg:custom', msg);
  }

  private emit(event: string, ...args: unknown[]): void {
    for (const cb of [...(this.listeners.get(event) ?? [])]) {
      try {
        cb(...args);
      } catch (error) {
        console.error(`mlops-nb: a ${event} listener failed`, error);
      }
    }
  }
}
