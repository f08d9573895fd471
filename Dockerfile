# The Lantern image: web, worker and beat in docker-compose.yml all run it, each with its own command.
FROM python:3.11-slim

# torch is pinned in pyproject.toml; from PyPI on x86_64 that version is the CUDA build (several GB, with the
# NVIDIA libraries). The portal embeds on the CPU, so a smaller image can take the CPU wheel of the same version:
#   docker compose build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_INDEX_URL=""

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=portal.settings \
    HF_HUB_OFFLINE=1 \
    LANTERN_DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

# Dependencies first, read from pyproject.toml alone, so a code change reuses this large layer.
# The project itself is not pip-installed: it runs from /app, where settings' BASE_DIR finds templates/ and static/.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code stays root-owned and read-only to the app; it writes only to /data (a volume) and STATIC_ROOT.
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin lantern \
    && mkdir -p /data /app/staticfiles \
    && chown lantern:lantern /data /app/staticfiles
COPY . .

USER lantern
EXPOSE 8000
CMD ["uvicorn", "portal.asgi:application", "--host", "0.0.0.0", "--port", "8000"]
