# Everything runs in .venv, created when missing. torch is installed by name (torch==2.13.0):
# a plain "torch" would pull GBs of CUDA packages.
PY := .venv/bin/python
PIP := .venv/bin/pip
STAMP := .venv/.installed

.PHONY: setup test test-avx2 lint demo bench-image bench-video bench-train clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test,dev,app]'
	SAM2_BUILD_CUDA=0 $(PIP) install -q --no-deps --no-build-isolation sam2==1.1.0
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/mypy

test: $(STAMP) lint
	$(PY) -m pytest -q

# The parity tests again under the AVX2 kernels (DESIGN §14): the last bits of results differ
# between CPUs, and CI runs on either kind. Harmless on a machine that only has AVX2. numpy
# picks its own AVX-512 code and ignores the torch/MKL/oneDNN switches: NPY_DISABLE_CPU_FEATURES
# sends it to its AVX2 (X86_V3) code too.
AVX2 := ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 \
	NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"
test-avx2: $(STAMP)
	$(AVX2) $(PY) -m pytest -q -m parity

demo: $(STAMP)
	.venv/bin/masklet demo

bench-image: $(STAMP)
	$(PY) benchmarks/image.py

# Needs vtest.avi from ../shared/data/fetch-samples.sh (see benchmarks/video.py --help).
bench-video: $(STAMP)
	$(PY) benchmarks/video.py

# Training steps: clips/s and share of the matmul peak (benchmarks/train.py --help).
bench-train: $(STAMP)
	$(PY) benchmarks/train.py

clean:
	rm -rf .venv build dist src/*.egg-info
