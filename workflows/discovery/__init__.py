"""Activity discovery end to end: feature tables + window labels -> GM-DGM / M2 -> reports and predictions.

Modules
-------
dataset : window tables from ``<name>.features.parquet`` files and annotations; standardisation; exclusions.
train : the semi-unsupervised training run (``capture-pipeline train``).
report, figures, html : cluster composition, metrics and the self-contained HTML report (``capture-pipeline report``).
predict : per-window cluster/class probabilities and time per cluster per day, on Dask (``capture-pipeline predict``).
demo : the one-command demonstration (``capture-pipeline demo``).
"""
