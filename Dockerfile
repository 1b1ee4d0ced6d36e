FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events ./events
COPY registry ./registry
COPY api ./api
COPY commandline ./commandline
RUN pip install --no-cache-dir .
ENV REGISTRY_DATABASE=/data/registry.sqlite
EXPOSE 8000
ENTRYPOINT ["registry"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
