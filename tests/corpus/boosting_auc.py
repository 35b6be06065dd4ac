# %% [markdown]
# Gradient boosting on synthetic data; ROC AUC from the positive-class probabilities.
# %%
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

X, y = make_classification(n_samples=400, n_features=10, random_state=7)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=7)
# %%
gb = GradientBoostingClassifier(n_estimators=30, learning_rate=0.2, random_state=0)
gb.fit(X_train, y_train)
print("ROC AUC: {:.3f}".format(roc_auc_score(y_test, gb.predict_proba(X_test)[:, 1])))
