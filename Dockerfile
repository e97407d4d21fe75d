# One image for every desks process; docker-compose picks the command.
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY desks ./desks
COPY api ./api
COPY watcher ./watcher
COPY broadcaster ./broadcaster
COPY embedded ./embedded
COPY launcher ./launcher
COPY replica-set-init ./replica-set-init
RUN pip install --no-cache-dir . && useradd --system desks
USER desks
# One JSON object per log line, for the log collector; `desks` itself defaults to logfmt.
ENV DESKS_LOG_FORMAT=json
CMD ["desks", "api", "--host", "0.0.0.0"]
