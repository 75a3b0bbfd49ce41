# convostore in a container: non-root, the SQLite database on a volume, healthy when
# /readyz says so. docs/deploy.md says how to run it and how this file was checked.
#
#   docker build -t convostore .
#   docker run -d -p 127.0.0.1:8000:8000 -v convostore:/var/lib/convostore \
#     -e CONVOSTORE_API_KEYS="acme:$(openssl rand -hex 32)" convostore
#
# BASE: any Debian-like image with Python >= 3.11, venv and useradd.
ARG BASE=python:3.12-slim-bookworm
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/convostore \
        --create-home --shell /usr/sbin/nologin convostore

COPY pyproject.toml README.md /src/
COPY src /src/src
RUN python3 -m venv /opt/convostore \
    && /opt/convostore/bin/pip install /src \
    && rm -rf /src

ENV PATH=/opt/convostore/bin:$PATH \
    CONVOSTORE_DB=/var/lib/convostore/convostore.db \
    CONVOSTORE_HOST=0.0.0.0 \
    CONVOSTORE_PORT=8000

USER convostore
WORKDIR /var/lib/convostore
VOLUME ["/var/lib/convostore"]
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, re, sys, urllib.request; port = os.environ.get('CONVOSTORE_PORT', '8000'); path = os.environ.get('CONVOSTORE_API_KEYS_FILE'); pairs = open(path).read() if path else os.environ.get('CONVOSTORE_API_KEYS', ''); key = next((p.partition(':')[2] for p in re.split('[,\\n]', pairs) if ':' in p), ''); headers = {'Authorization': 'Bearer ' + key} if key else {}; request = urllib.request.Request(f'http://127.0.0.1:{port}/readyz', headers=headers); sys.exit(0 if urllib.request.urlopen(request, timeout=2).status == 200 else 1)"]

CMD ["convostore", "serve"]
