#!/bin/sh
# Run by Snakemake once in a new conda environment made from brainsr.yaml (--software-deployment-method conda):
# install this checkout of brainsr into it, editable and without dependencies (brainsr.yaml lists them), so that
# the `brainsr` command every rule calls exists there and follows the checkout.
set -e
pip install --no-deps -e "$(dirname "$0")/.."
