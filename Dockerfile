# One image for every Quiver node; docker-compose.yml runs three of them in three zones
# (`quiver serve --config /etc/quiver/nodes/N/node.json`, configs from
# `quiver init --hosts node1,node2,node3`).
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
