#!/bin/sh
# Runs `robust bench` and the plain-PyTorch reference side by side in one go: the reference is run one workload
# group at a time, interleaved with ours, and the table shows ours/PyTorch per workload. Extra arguments go to
# `robust bench` (e.g. --threads 1, --rounds 3, --json, --scaling --plot docs/performance-scaling.png).
#
#   tests/bench/compare.sh [--rounds 3] [--json] ...
#
# Needs Debian's python3-torch (1.13) and libopenblas0 for the reference. Timings are only worth quoting on an
# otherwise idle machine: the script prints the load average first.
set -eu
cd "$(dirname "$0")/../.."
python=${PYTHON:-/usr/bin/python3}
if ! "$python" -c "import torch" 2>/dev/null; then
    echo "compare.sh: $python cannot import torch (apt-get install python3-torch libopenblas0)" >&2
    exit 2
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
dotnet build src/Robustness.Cli -c Release -v quiet -nologo >&2
exec src/Robustness.Cli/bin/Release/net10.0/robust bench --compare "$python tests/bench/pytorch_reference.py" "$@"
