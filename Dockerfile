# neurocloud's own container: SageMaker "bring your own container" for training and serving,
# and any other Docker host.
#
#   docker build -t neurocloud .
#   docker run --rm -p 8080:8080 -v "$PWD/models/seed:/opt/ml/model:ro" neurocloud serve
#   docker run --rm -v "$PWD/ml:/opt/ml" neurocloud train
#
# `serve` serves /opt/ml/model (or $SM_MODEL_DIR) on 0.0.0.0:$SAGEMAKER_BIND_TO_PORT (8080);
# `train` follows SageMaker's training contract under /opt/ml (or $NEUROCLOUD_SAGEMAKER_ROOT);
# any other neurocloud command works too (`docker run neurocloud predict ...`).
FROM python:3.11-slim

# SageMaker may ask the container to listen on another port ($SAGEMAKER_BIND_TO_PORT).
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true \
      org.opencontainers.image.title="neurocloud" \
      org.opencontainers.image.description="Neural networks on NumPy: train and serve (SageMaker, Open Inference Protocol)" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The package with scikit-learn (training uses its estimators, splits and metrics);
# serving itself needs only the core dependencies.
COPY pyproject.toml README.md /tmp/neurocloud/
COPY src /tmp/neurocloud/src
RUN pip install "/tmp/neurocloud[sklearn]" && rm -rf /tmp/neurocloud

# A non-root user for hosts that allow it (Kubernetes, KServe, plain Docker:
# `docker run --user neurocloud ...`). SageMaker runs its containers as root and owns
# /opt/ml, so the image keeps root as the default user for it.
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin neurocloud \
    && mkdir -p /opt/ml/model /opt/ml/input /opt/ml/output \
    && chown -R neurocloud:neurocloud /opt/ml
WORKDIR /opt/ml

EXPOSE 8080
# Exec form: the server is PID 1 and receives SageMaker's SIGTERM directly.
ENTRYPOINT ["neurocloud"]
CMD ["serve"]
