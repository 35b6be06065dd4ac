# %% [markdown]
# How many features to keep before an SVM: a pipeline's selection step swept with
# `set_params`, each setting scored by cross-validation (only the means are kept, for a plot).
# %%
import numpy as np
from sklearn.datasets import load_wine
from sklearn.feature_selection import SelectPercentile, f_classif
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

X, y = load_wine(return_X_y=True)
noise = np.random.RandomState(1).uniform(size=(X.shape[0], 20))
X = np.hstack([X, noise])
model = Pipeline([("select", SelectPercentile(f_classif)), ("scale", StandardScaler()),
                  ("svm", SVC())])
# %%
kept = (5, 20, 50, 100)
means = []
for pct in kept:
    model.set_params(select__percentile=pct)
    means.append(cross_val_score(model, X, y, cv=4).mean())
print(dict(zip(kept, np.round(means, 3))))
