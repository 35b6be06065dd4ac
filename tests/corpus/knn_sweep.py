# %% [markdown]
# A sweep over the number of neighbours; each score printed inside the loop.
# %%
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=4)
# %%
k_values = [1, 5, 15, 40]
for k in k_values:
    knn = KNeighborsClassifier(n_neighbors=k)
    knn.fit(X_train, y_train)
    print(f"k={k}: test accuracy {knn.score(X_test, y_test):.3f}")
