# %% [markdown]
# A randomized search over a small forest, then the test score of the best model.
# %%
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import RandomizedSearchCV, train_test_split

X, y = load_wine(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
# %%
param_dist = {"max_depth": [2, 4, None], "n_estimators": [5, 10, 20]}
search = RandomizedSearchCV(RandomForestClassifier(random_state=0), param_dist, n_iter=4,
                            cv=3, random_state=0)
search.fit(X_train, y_train)
search.best_params_, search.best_score_
# %%
print("test score of the best model:", search.score(X_test, y_test))
