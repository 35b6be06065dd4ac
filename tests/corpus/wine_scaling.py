# %% [markdown]
# Two pipelines, with and without scaling, compared on the same test set.
# %%
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_wine(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.30, random_state=42)
# %%
unscaled_clf = make_pipeline(PCA(n_components=2), LogisticRegression(max_iter=1000))
unscaled_clf.fit(X_train, y_train)
y_pred = unscaled_clf.predict(X_test)
scaled_clf = make_pipeline(StandardScaler(), PCA(n_components=2), LogisticRegression())
scaled_clf.fit(X_train, y_train)
y_pred_scaled = scaled_clf.predict(X_test)
print("Prediction accuracy without scaling")
print(f"{accuracy_score(y_test, y_pred):.2%}")
print("Prediction accuracy with scaling")
print(f"{accuracy_score(y_test, y_pred_scaled):.2%}")
