"""What the Snakemake workflow needs from the package at parse time: the run's file names and job specs.

Kept light (standard library only): Snakemake imports it whenever it parses the workflow.
"""
