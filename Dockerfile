# The image of Parley's API and worker (temporal-dev.yml runs it with two commands):
#   api:    python -m db.migrate && uvicorn api.main:create_app --factory --host 0.0.0.0 --port 8000
#   worker: python worker.py   (the default command)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PARLEY_DATA_DIR=/data

WORKDIR /app

# The project as pyproject.toml packages it (README.md is its declared readme), installed
# with its pinned dependencies; the test extras stay out of the image.
COPY pyproject.toml README.md config.py worker.py ./
COPY api/ api/
COPY activities/ activities/
COPY db/ db/
COPY domain/ domain/
COPY workflows/ workflows/
RUN pip install . \
    && rm -rf build ./*.egg-info \
    && useradd --system --uid 10001 --no-create-home --home-dir /app parley \
    && mkdir /data \
    && chown parley:parley /data

# /data holds evidence files; a named volume mounted there starts with this ownership.
USER parley
EXPOSE 8000
CMD ["python", "worker.py"]
