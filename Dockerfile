# One image for every Khala node: `khala judicator|executor|gateway|up` (see docker-compose.yml).
FROM python:3.11-slim

# bubblewrap: the executors' sandbox (namespaces); the container must run privileged for it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY khala ./khala
RUN pip install --no-cache-dir . && rm -rf /src/build

WORKDIR /var/lib/khala
ENV PYTHONUNBUFFERED=1
EXPOSE 4000 7000
CMD ["khala", "--help"]
