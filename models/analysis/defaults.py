"""Defaults the QGIS dialogs show; imports nothing, so the plugin loads without numpy or rasterio."""

SIMILARITY_THRESHOLD = 0.8  # the "dates similar" band counts dates at or above it
MAX_CLASSES = 254  # uint8 codes 1..254, 0 = no data
MODELS = ("random_forest", "logistic_regression", "knn")
MODEL_LABELS = ("Random forest", "Logistic regression", "k nearest neighbours")
FOLDS = 5
BLOCK_SIZE = 200.0  # metres, of the cross-validation's spatial blocks
