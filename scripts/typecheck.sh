#!/usr/bin/env bash
# Type-check the one `edgesplit` package. mypy cannot follow setuptools' editable import hook that
# maps edgesplit.device -> device/ (pyproject's package-dir), so this lays the same mapping out as
# symlinks under build/typecheck/ and checks that tree; paths in messages are under it.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=build/typecheck
rm -rf "$stage" && mkdir -p "$stage/edgesplit"
for f in edgesplit/*.py; do ln -s "../../../$f" "$stage/edgesplit/$(basename "$f")"; done
for d in edgesplit/*/; do  # subpackages of edgesplit/ itself (edgesplit/sources/)
  [ -f "$d/__init__.py" ] && ln -s "../../../${d%/}" "$stage/edgesplit/$(basename "$d")"
done
for d in device cloud sim; do ln -s "../../../$d" "$stage/edgesplit/$d"; done
exec "${MYPY:-.venv/bin/mypy}" --config-file pyproject.toml "$@" "$stage/edgesplit"
