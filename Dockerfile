# One image for every Quiver node; docker-compose.yml runs three of them in three zones.
# `quiver serve` arrives with issue #5: until then a container prints one "not yet" line
# and exits with status 2.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /opt/quiver
COPY . .
RUN pip install . \
    && useradd --system --home-dir /var/lib/quiver --create-home quiver \
    && mkdir -p /etc/quiver

USER quiver
WORKDIR /var/lib/quiver
ENTRYPOINT ["quiver"]
CMD ["--help"]
