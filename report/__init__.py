"""Results from run records alone: the tables (tables.py, no torch), the plots (plots.py), the misclassified
test images of a checkpoint (misclassified.py) and the generated pages (pages.py)."""
