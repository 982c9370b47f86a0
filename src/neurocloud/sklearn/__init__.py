"""scikit-learn estimators on the neurocloud engine: NeuralNetClassifier, NeuralNetRegressor.

They pass scikit-learn's estimator checks, work in ``Pipeline``/``GridSearchCV``, convert
to and from a :class:`neurocloud.Sequential` (``to_sequential``/``from_sequential``), and
``nc.save``/``nc.load`` (and pickle) them through the safe artifact format.

>>> import neurocloud as nc
>>> from neurocloud.sklearn import NeuralNetClassifier
>>> clf = NeuralNetClassifier((8,), max_epochs=50, learning_rate=0.05, random_state=0)
>>> clf.fit([[0.0], [1.0], [2.0], [3.0]], ["low", "low", "high", "high"]).predict([[2.5]])
array(['high'], dtype='<U4')
>>> clf.to_sequential().predict([[2.5]]).shape  # probabilities of classes_
(1, 2)
"""

from neurocloud.extras import require

require("sklearn")  # without scikit-learn: one line naming neurocloud[sklearn]

from neurocloud.sklearn._classifier import NeuralNetClassifier  # noqa: E402
from neurocloud.sklearn._persist import from_artifact  # noqa: E402
from neurocloud.sklearn._regressor import NeuralNetRegressor  # noqa: E402

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor", "from_artifact"]
