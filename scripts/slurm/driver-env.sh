#!/usr/bin/env bash
# A Snakemake driver environment with the SLURM executor plugin, layered over the brainsr environment.
#
#   scripts/slurm/driver-env.sh DRIVER_DIR [BRAINSR_PYTHON]     # BRAINSR_PYTHON: default `python` on PATH
#   PATH=/path/to/brainsr-env/bin:$PATH DRIVER_DIR/bin/python -m snakemake --profile profiles/slurm ...
#
# Why a second environment: every 2.x release of snakemake-executor-plugin-slurm needs numpy >= 2.4.5 (2.7, 2.8)
# or pandas < 3 (up to 2.6), while antspyx 0.6.3 needs numpy < 2.4; one environment cannot hold both.
# How: DRIVER_DIR is a venv whose own site-packages hold the plugin and the numpy it needs; a .pth file then adds
# the brainsr environment's site-packages behind them (site.addsitedir, so its editable install works too), so
# Snakemake, brainsr and pybids come from the brainsr environment. The jobs' commands run `brainsr` from PATH:
# put the brainsr environment's bin first. Override the plugin requirement with BRAINSR_SLURM_PLUGIN.
set -euo pipefail

[ $# -ge 1 ] || { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
driver=$1
base=${2:-python}
plugin=${BRAINSR_SLURM_PLUGIN:-"snakemake-executor-plugin-slurm>=2.8,<3"}

purelib() { "$1" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"; }
version() { "$1" -c "import sys; print('%d.%d' % sys.version_info[:2])"; }

base_site=$(purelib "$base") || { echo "driver-env: cannot run $base" >&2; exit 1; }
"$base" -c "import snakemake, brainsr" || { echo "driver-env: $base has no snakemake/brainsr" >&2; exit 1; }
py="python$(version "$base")"
command -v "$py" >/dev/null || py=$("$base" -c "import sys; print(sys.executable)")
"$py" -m venv "$driver"
driver_site=$(purelib "$driver/bin/python")
echo "import site; site.addsitedir('$base_site')" >"$driver_site/brainsr-env.pth"
"$driver/bin/python" -m pip install -q --disable-pip-version-check "$plugin"
"$driver/bin/python" -c "import snakemake_executor_plugin_slurm, snakemake, brainsr.bids"
echo "driver-env: $driver/bin/python -m snakemake (plugin: $plugin; brainsr environment: $base_site)" >&2
