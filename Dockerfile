# The Herd operator image. Build from the repository root: docker build -t herd-operator .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/herd
# Dependencies get their own layer, reused while only the operator's code changes.
COPY requirements.lock ./
RUN /opt/herd/bin/pip install --require-hashes --no-deps --requirement requirements.lock
COPY pyproject.toml ./
COPY operator/ operator/
RUN /opt/herd/bin/pip install --no-deps .

FROM ${PYTHON_IMAGE}
RUN groupadd --gid 10001 herd \
 && useradd --uid 10001 --gid herd --no-create-home --shell /usr/sbin/nologin herd
COPY --from=build /opt/herd /opt/herd
ENV PATH=/opt/herd/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["herd"]
CMD ["operator"]
