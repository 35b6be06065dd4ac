# %% [markdown]
# cross_validate with two scorings, shown as a pandas table.
# %%
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.model_selection import cross_validate
from sklearn.tree import DecisionTreeClassifier

X, y = make_classification(n_samples=300, n_features=8, random_state=0)
# %%
cv_results = cross_validate(DecisionTreeClassifier(max_depth=4, random_state=0), X, y, cv=5,
                            scoring=["accuracy", "f1"], return_train_score=True)
pd.DataFrame(cv_results)[["test_accuracy", "test_f1"]].mean()
