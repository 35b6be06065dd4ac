# %% [markdown]
# Grid search over an SVC on half of the digits, then a report on the held-out half.
# %%
from sklearn import datasets
from sklearn.metrics import classification_report
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.svm import SVC

digits = datasets.load_digits()
X = digits.images.reshape((len(digits.images), -1))[:600]
y = digits.target[:600]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
# %%
tuned_parameters = [
    {"kernel": ["rbf"], "gamma": [1e-3, 1e-4], "C": [1, 10]},
    {"kernel": ["linear"], "C": [1, 10]},
]
grid = GridSearchCV(SVC(), tuned_parameters, cv=3)
grid.fit(X_train, y_train)
print("Best parameters set found on development set:", grid.best_params_)
print("Best CV score: %0.3f" % grid.best_score_)
# %%
y_true, y_pred = y_test, grid.predict(X_test)
print(classification_report(y_true, y_pred))
