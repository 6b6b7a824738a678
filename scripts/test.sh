#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what ferry
# needs (scripts/setup.sh), builds it, and runs every test.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/scripts/setup.sh"
exec "$here/tests/run" "$@"
