# The c360 application image: nightly Spark jobs and the FastAPI service.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven procps \
 && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    PYTHONUNBUFFERED=1 \
    C360_WAREHOUSE=/warehouse
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY c360 c360
COPY recsys recsys
COPY entity_resolution entity_resolution
COPY graph graph
COPY api api
COPY jobs jobs
COPY data data
RUN pip install --no-cache-dir -c requirements.lock . && rm -rf /app/c360 /app/recsys /app/entity_resolution /app/graph /app/api /app/jobs /app/data
# an unprivileged user runs everything; it owns the warehouse (a fresh named volume takes this ownership), the
# working directory and its home (~/.cache/c360)
RUN groupadd --system --gid 10001 c360 \
 && useradd --system --uid 10001 --gid c360 --create-home --home-dir /home/c360 --shell /usr/sbin/nologin c360 \
 && mkdir -p /warehouse \
 && chown -R c360:c360 /warehouse /app
USER 10001:10001
VOLUME ["/warehouse"]
EXPOSE 8000
CMD ["c360", "serve", "--host", "0.0.0.0", "--port", "8000"]
