PY ?= .venv/bin/python

test:
	$(PY) -m pytest -q

lint:
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy

bench:
	$(PY) bench/feeds.py
	$(PY) bench/digest.py
	$(PY) bench/send.py
	$(PY) bench/providers.py

golden:
	PRESSROOM_UPDATE_GOLDEN=1 $(PY) -m pytest -q tests -k golden

.PHONY: test lint bench golden
