# Seizure Relay server image: slim Python, non-root, `relay serve` (migrates, then serves).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 relay \
    && mkdir -p /srv/relay/data \
    && chown -R relay:relay /srv/relay
COPY --from=build /install /usr/local
WORKDIR /srv/relay
COPY --chown=relay:relay alembic.ini ./
COPY --chown=relay:relay migrations ./migrations
USER relay
ENV RELAY_HOST=0.0.0.0 \
    RELAY_PORT=8000 \
    RELAY_DATABASE_URL=sqlite+aiosqlite:////srv/relay/data/relay.db
VOLUME /srv/relay/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["relay", "serve"]
