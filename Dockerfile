# Glyph KB app image: `kb serve` (HTTP API) and `kb ui` (Streamlit) run from the same image.
#   docker build -t glyph-kb .
#   docker build --build-arg TORCH_INDEX_URL=https://pypi.org/simple -t glyph-kb:cuda .   # CUDA torch (large)
FROM python:3.11-slim

# System packages, as install.sh (minus chromium, which only the UI end-to-end test needs):
# fonts for glyph rendering (Latin, CJK, code), tesseract for OCR of scanned PDFs,
# poppler for PDF rasterising, libmagic for file-type sniffing in unstructured.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      fonts-noto-core fonts-noto-cjk fonts-noto-mono fonts-dejavu-core \
      tesseract-ocr tesseract-ocr-jpn \
      poppler-utils \
      libmagic1 \
 && rm -rf /var/lib/apt/lists/*

# torch/torchvision are pinned in pyproject.toml (==2.14.1 / ==0.29.1). The default index here is the
# CPU build of that exact pair (2.14.1+cpu satisfies ==2.14.1): embeddings run fine on CPU and the
# image stays small. Pass TORCH_INDEX_URL=https://pypi.org/simple for the CUDA wheels.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY kb ./kb
COPY ingest ./ingest
COPY ui ./ui
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" ".[server,s3]"

# Non-root user. /data is the data dir (images/, docs/ manifests, and qdrant/ in embedded mode);
# /models is the Hugging Face / open_clip cache for the CLIP and text models (downloaded on first use).
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin kb \
 && mkdir -p /data /models \
 && chown kb:kb /data /models
ENV KB_DATA_DIR=/data \
    HF_HOME=/models \
    XDG_CACHE_HOME=/models \
    HOME=/home/kb
VOLUME ["/data", "/models"]
USER kb
WORKDIR /home/kb

EXPOSE 8000 8501
ENTRYPOINT ["kb"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
