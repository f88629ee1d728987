# The app image for compose.yaml: every Causeloop process (api, relay, projector, migrate) runs from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
RUN pip install . && useradd --system --no-create-home causeloop \
    && mkdir -p /var/lib/causeloop && chown causeloop /var/lib/causeloop
# DATA_DIR: the development sign-in issuer's key and the development master key; compose shares it between
# the app containers through a volume, so every replica trusts the same key.
ENV DATA_DIR=/var/lib/causeloop

USER causeloop
EXPOSE 4000
CMD ["causeloop", "api"]
