# %% [markdown]
# Regularisation strength on a log grid; the R^2 of each fit bound to a variable and printed.
# %%
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=3)
# %%
for alpha in np.logspace(-3, 1, 5):
    ridge = Ridge(alpha=alpha).fit(X_train, y_train)
    r2 = ridge.score(X_test, y_test)
    print(f"alpha={alpha:.3g}  R2={r2:.4f}")
