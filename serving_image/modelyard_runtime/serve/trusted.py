"""The types the server lets skops rebuild, beyond those skops trusts by default.

The server owns this list; the artifact does not get a say (loading with whatever
``get_untrusted_types`` reports would let a tampered file name any type). It holds exactly
what the pipelines our trainer builds need, for every allow-listed estimator;
tests/unit/test_runtime_trusted_types.py fails when a pipeline needs a type missing here.
"""

from __future__ import annotations

SERVER_TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    # tree ensembles and decision trees
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # nearest neighbours: the search structures and their distance metrics
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
)
