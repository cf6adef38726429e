#!/usr/bin/env bash
# The test command (README): installs what the tests need on a fresh machine, then runs them all.
#   bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages of the independent DICOM tools the tests run against.
need_apt=()
command -v dcmdump >/dev/null || need_apt+=(dcmtk)
command -v dciodvfy >/dev/null || need_apt+=(dicom3tools)
command -v dcm2niix >/dev/null || need_apt+=(dcm2niix)
command -v Orthanc >/dev/null || [ -x /usr/sbin/Orthanc ] || need_apt+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need_apt+=(orthanc-dicomweb)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi

python3 -m pip install -q -e ".[test]"
python3 -m ruff check workbench tests benchmarks data/make_sample.py
python3 -m pytest "$@"
