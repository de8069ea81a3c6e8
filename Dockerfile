# dripcare's image: the wheel and its locked dependencies, nothing else.
#   docker build -t dripcare .                        # api, worker, beat, migrate
#   docker build --build-arg EXTRAS=flower -t dripcare .   # also Flower (compose's flower profile)
# tests/install_commands.py holds the pip commands below; tests/test_wheel.py runs them.

# ---- builder: the only stage with build tools and the source tree -----------------------------
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements-build.lock ./
RUN pip install --require-hashes -r requirements-build.lock
COPY pyproject.toml README.md LICENSE ./
# src/dripcare/shipped/ links to alembic/ and templates/: the wheel gets copies of them.
COPY alembic ./alembic
COPY templates ./templates
COPY src ./src
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

# ---- the image ---------------------------------------------------------------------------------
FROM python:3.11-slim
ARG EXTRAS=""
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DRIPCARE_STATE_DIR=/var/lib/dripcare
# Beat's schedule and heartbeat go to the state dir, the one place the process writes.
RUN useradd --system --user-group --no-create-home --shell /usr/sbin/nologin dripcare \
    && install -d -o dripcare -g dripcare -m 750 /var/lib/dripcare
# Dependencies in their own layer, before any of our code: a code change reuses it.
COPY requirements.lock requirements-flower.lock /tmp/locks/
RUN pip install --require-hashes -r "/tmp/locks/requirements${EXTRAS:+-$EXTRAS}.lock" \
    && rm -r /tmp/locks
COPY --from=builder /wheels/ /tmp/wheels/
# The base image's setuptools and wheel are build tools; nothing here builds.
RUN pip install --no-deps /tmp/wheels/dripcare-*.whl \
    && rm -r /tmp/wheels && pip uninstall --yes setuptools wheel
# Owned by root: the process reads its package from site-packages and writes only the state dir.
WORKDIR /app
USER dripcare
# The API's check; docker-compose.yml gives worker and beat their own.
HEALTHCHECK CMD ["dripcare", "health", "api"]
ENTRYPOINT ["dripcare"]
