# %% [markdown]
# Ordinary least squares on one feature of the diabetes data; errors printed with %-format.
# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn import datasets, linear_model
from sklearn.metrics import mean_squared_error, r2_score

X_all, y_all = datasets.load_diabetes(return_X_y=True)
X_one = X_all[:, np.newaxis, 2]
X_train, X_test = X_one[:-20], X_one[-20:]
y_train, y_test = y_all[:-20], y_all[-20:]
# %%
regr = linear_model.LinearRegression()
regr.fit(X_train, y_train)
y_pred = regr.predict(X_test)
print("Coefficients: \n", regr.coef_)
print("Mean squared error: %.2f" % mean_squared_error(y_test, y_pred))
print("Coefficient of determination: %.2f" % r2_score(y_test, y_pred))
# %%
plt.scatter(X_test, y_test, color="black")
plt.plot(X_test, y_pred, color="blue", linewidth=3)
plt.show()
