"""``modelyard-train``: fit an allow-listed scikit-learn pipeline, gate it, store it, report."""
