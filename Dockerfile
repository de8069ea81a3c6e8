FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY alembic ./alembic
COPY templates ./templates
# Editable, so the shipped templates/ and alembic/ stay beside the code that finds them.
RUN pip install -e . && useradd --create-home dripcare
USER dripcare
ENTRYPOINT ["dripcare"]
