# %% [markdown]
# Several classifiers compared on one split: a list of names zipped with a list of models,
# each fitted and scored inside the loop, the score bound to a name and printed.
# %%
from sklearn.datasets import make_moons
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

X, y = make_moons(n_samples=300, noise=0.3, random_state=0)
X = StandardScaler().fit_transform(X)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=42)
# %%
names = ["Nearest Neighbors", "RBF SVM", "Decision Tree"]
classifiers = [
    KNeighborsClassifier(3),
    make_pipeline(StandardScaler(), SVC(gamma=2, C=1)),
    DecisionTreeClassifier(max_depth=2, random_state=42),
]
for name, clf in zip(names, classifiers):
    clf.fit(X_train, y_train)
    score = clf.score(X_test, y_test)
    print(f"{name:>20}: {score:.2f}")
