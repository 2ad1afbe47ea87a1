"""ml: the chest X-ray classifier; no Flask, no database, no ``csss_fhir`` imports.

Model definition, preprocessing, training, evaluation, calibration, Grad-CAM, export and
serving. Serving (``ml.infer``) needs only NumPy, OpenCV and LiteRT; TensorFlow is imported
inside the functions that train, export or load a ``.keras`` model, never at import time.
"""
