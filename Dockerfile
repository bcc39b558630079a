# Khala's images (see docker-compose.yml): `base` runs every node (`khala judicator|gateway|up`);
# `executor` adds the compilers and runtimes of every language preset (docs/judging.md) for
# `khala executor`.
FROM python:3.11-slim AS base

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

# The executor: the tools the presets name (c: gcc, cpp: g++, python3, java: javac + java,
# go, rust: rustc), from Debian; the executor detects them at start (khala/executor/languages.py).
FROM base AS executor
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        gcc g++ libc6-dev python3 openjdk-17-jdk-headless golang-go rustc \
    && rm -rf /var/lib/apt/lists/*
