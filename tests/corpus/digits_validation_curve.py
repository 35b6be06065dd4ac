# %% [markdown]
# Validation curve of an SVC's gamma on a slice of digits, plotted.
# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import validation_curve
from sklearn.svm import SVC

X, y = load_digits(return_X_y=True)
X, y = X[:400], y[:400]
param_range = np.logspace(-5, -2, 4)
train_scores, test_scores = validation_curve(
    SVC(), X, y, param_name="gamma", param_range=param_range, scoring="accuracy", cv=3)
plt.semilogx(param_range, np.mean(test_scores, axis=1), label="Cross-validation score",
             color="navy", lw=2)
plt.legend(loc="best")
plt.show()
