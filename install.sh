#!/usr/bin/env bash
# Installs Glyph KB: system packages (fonts, OCR, PDF tools), a venv in .venv, and the Python packages.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(
  fonts-noto-core fonts-noto-cjk fonts-noto-mono fonts-dejavu-core  # glyph rendering (Latin, CJK, code)
  tesseract-ocr tesseract-ocr-jpn                                  # OCR of scanned PDFs + legibility checks
  poppler-utils                                                    # PDF rasterising for OCR
  libmagic1                                                        # file-type sniffing in unstructured
  chromium                                                         # headless browser for the UI end-to-end test
)

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}"
else
  echo "apt-get not found: install these yourself: ${APT_PACKAGES[*]}" >&2
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch/torchvision are pinned in pyproject.toml (2.14.1 / 0.29.1).
.venv/bin/python -m pip install -q -e ".[dev,server,s3]"   # server: the HTTP API (kb serve); s3: an S3 image store
echo "Glyph KB installed. Try: .venv/bin/kb ingest examples/docs && .venv/bin/kb search \"p99 latency of POST /payments\""
