"""Reporting (paper 4): group tables, figures 5-13 and the blinded rating sheet from the evaluation files."""

from brainsr.report.tables import AGREEMENT_TABLES, QUALITY_TABLE_METRICS, bland_altman_table, mean_sd

__all__ = ["AGREEMENT_TABLES", "QUALITY_TABLE_METRICS", "bland_altman_table", "mean_sd"]
