FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events ./events
COPY registry ./registry
COPY api ./api
COPY commandline ./commandline
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin registry \
    && mkdir -p /data && chown registry:registry /data
# The store (SQLite by default) and any key files live in /data, a volume the registry user owns.
ENV REGISTRY_DATABASE=/data/registry.sqlite
VOLUME ["/data"]
WORKDIR /data
USER registry
EXPOSE 8000
ENTRYPOINT ["registry"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
