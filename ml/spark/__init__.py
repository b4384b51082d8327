"""Batch scoring and training on Spark: the same kernel and contract as the local engines, run
by a Spark cluster (EMR Serverless, Databricks, `local[N]`): `scoring`, `training`, `session`,
and what submits a job to EMR Serverless (`submit`, `emr_serverless`, `entry`). pyspark is the
optional `spark` extra: nothing outside this package imports it, and this package imports it
lazily."""
