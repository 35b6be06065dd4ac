# %% [markdown]
# A ROC curve drawn from decision scores, its area from `auc(fpr, tpr)`; then a permutation
# test of the same model's cross-validated accuracy.
# %%
import matplotlib.pyplot as plt
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import auc, roc_curve
from sklearn.model_selection import permutation_test_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
# %%
model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05))
model.fit(X_train, y_train)
fpr, tpr, thresholds = roc_curve(y_test, model.decision_function(X_test))
roc_auc = auc(fpr, tpr)
plt.plot(fpr, tpr, label="ROC curve (area = %0.3f)" % roc_auc)
plt.legend(loc="lower right")
plt.show()
# %%
score, perm_scores, pvalue = permutation_test_score(
    model, X, y, scoring="accuracy", cv=3, n_permutations=20, random_state=0)
print(f"Score on original data: {score:.2f} (p-value: {pvalue:.3f})")
