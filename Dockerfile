# One image for every role: `jobimporter api | worker | scheduler | run`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    JOBIMPORTER_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
 && useradd --system --home /data --shell /usr/sbin/nologin jobimporter \
 && mkdir -p /data && chown jobimporter /data

USER jobimporter
VOLUME ["/data"]
EXPOSE 8000
# Stop gracefully: workers finish their active jobs (up to the job timeout) on SIGTERM.
STOPSIGNAL SIGTERM
CMD ["jobimporter", "run"]
