// the runs view's own style (shared with the widget and the report), then the panel's
import '../../mlops_nb/static/runs_view.css';
import './base.css';
