"""Spark: the training backend (`ml.spark.training`) and what runs it (local or EMR Serverless)."""
