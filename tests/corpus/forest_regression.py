# %% [markdown]
# A random forest regressor; R2 and MAE printed, hyper-parameters written in the call.
# %%
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=1)
# %%
forest = RandomForestRegressor(n_estimators=25, max_depth=6, random_state=0)
forest.fit(X_train, y_train)
print("R2:", r2_score(y_test, forest.predict(X_test)))
print("MAE:", mean_absolute_error(y_test, forest.predict(X_test)))
