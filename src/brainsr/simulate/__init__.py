"""Synthetic paired clinical/research cohort (``brainsr simulate``): anatomy, MR physics, acquisition, BIDS."""
