"""Running neurocloud in the cloud: SageMaker deployment and our container's training entry.

- :mod:`neurocloud.cloud.aws`: a boto3 session from the usual AWS configuration, with clear
  errors for missing credentials or region;
- :mod:`neurocloud.cloud.deploy`: upload a package to S3 and create (or delete) the SageMaker
  model, endpoint configuration and endpoint;
- :mod:`neurocloud.cloud.container_training`: SageMaker's training contract inside our
  container (``docker run IMAGE train``).

boto3 is imported only when a function here needs it.
"""
