import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { NotebookDecorator } from './notebook';
import { ExperimentsPanel } from './panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16">
<path class="jp-icon3" fill="#616161" d="M9 2v6.3L3.6 18A2.7 2.7 0 0 0 6 22h12a2.7 2.7 0 0 0
2.4-4L15 8.3V2h-2v6.8l5.6 10.1a.7.7 0 0 1-.6 1.1H6a.7.7 0 0 1-.6-1.1L11 8.8V2z
M8 16l2-3h4l2 3z"/></svg>`;

const icon = new LabIcon({ name: 'mlops-nb:flask', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@mlops-nb/labextension:plugin',
  description: 'mlops-nb: an Experiments panel, cell badges and lineage highlighting',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILabShell],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker) => {
    const settings = ServerConnection.makeSettings();
    const decorators = new Map<NotebookPanel, NotebookDecorator>();

    const goToCell = async (path: string, cellId: string) => {
      const widget = (await app.commands.execute('docmanager:open', { path })) as NotebookPanel;
      const nb = (widget ?? tracker.currentWidget)?.content;
      if (!nb) {
        return;
      }
      const index = nb.widgets.findIndex(c => c.model.id === cellId);
      if (index < 0) {
        panel.model.update('status', 'that cell is no longer in the notebook');
        return;
      }
      nb.activeCellIndex = index;
      void nb.scrollToItem(index, 'center');
    };

    const panel = new ExperimentsPanel(
      {
        openFile: path => void app.commands.execute('docmanager:open', { path, factory: 'Editor' }),
        openReport: (html, title) => {
          const frame = document.createElement('iframe');
          frame.setAttribute('sandbox', 'allow-scripts');
          frame.className = 'mnb-report-frame';
          frame.srcdoc = html;
          const content = new Widget({ node: document.createElement('div') });
          content.node.append(frame);
          content.addClass('mnb-report');
          const main = new MainAreaWidget({ content });
          main.id = `mlops-nb-report-${Date.now()}`;
          main.title.label = title;
          main.title.icon = icon;
          main.title.closable = true;
          app.shell.add(main, 'main');
          app.shell.activateById(main.id);
        },
        goToCell: (path, cellId) => void goToCell(path, cellId)
      },
      settings
    );
    panel.title.icon = icon;
    app.shell.add(panel, 'left', { rank: 600 });

    panel.lineageChanged.connect((_, lineage) => {
      for (const d of decorators.values()) {
        d.setLineage(lineage);
      }
    });
    panel.storeChanged.connect(() => {
      for (const d of decorators.values()) {
        void d.refreshBadges();
      }
    });

    app.commands.addCommand('mlops-nb:select-run', {
      label: 'Select run in the Experiments panel',
      execute: async args => {
        app.shell.activateById(panel.id);
        await panel.selectRun(String(args.id), (args.experiment as string) ?? null);
      }
    });
    app.commands.addCommand('mlops-nb:open-panel', {
      label: 'Show the Experiments panel',
      execute: () => app.shell.activateById(panel.id)
    });

    tracker.widgetAdded.connect((_, nbPanel) => {
      const deco = new NotebookDecorator(
        nbPanel,
        run =>
          void app.commands.execute('mlops-nb:select-run', {
            id: run.id,
            experiment: run.experiment
          }),
        settings
      );
      decorators.set(nbPanel, deco);
      // File > Rename: the panel follows the notebook to its new path (the server tells the
      // kernel; runs recorded from now on carry the new path, in the same experiment).
      nbPanel.context.pathChanged.connect((_, path) => {
        if (tracker.currentWidget === nbPanel) {
          panel.setNotebook(path, { renamed: true });
        }
      });
      nbPanel.disposed.connect(() => decorators.delete(nbPanel));
    });
    tracker.currentChanged.connect((_, nbPanel) => {
      if (nbPanel) {
        panel.setNotebook(nbPanel.context.path);
      }
    });
    if (tracker.currentWidget) {
      panel.setNotebook(tracker.currentWidget.context.path);
    }
  }
};

export default plugin;
