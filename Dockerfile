# The app image for compose.yaml: every Causeloop process (api, relay, projector, migrate) runs from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
RUN pip install . && useradd --system --no-create-home causeloop

USER causeloop
EXPOSE 4000
CMD ["causeloop", "api"]
