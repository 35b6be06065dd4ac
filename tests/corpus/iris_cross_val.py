# %% [markdown]
# Five-fold cross-validation of a linear SVM on iris; only the mean and std are printed.
# %%
from sklearn import svm
from sklearn.datasets import load_iris
from sklearn.model_selection import cross_val_score

X, y = load_iris(return_X_y=True)
# %%
clf = svm.SVC(kernel="linear", C=1, random_state=42)
scores = cross_val_score(clf, X, y, cv=5)
print("%0.2f accuracy with a standard deviation of %0.2f" % (scores.mean(), scores.std()))
