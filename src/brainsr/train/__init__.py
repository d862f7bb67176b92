"""Training of the super-resolution models (Li et al. 2022, sections 3.4-3.5, 3.9)."""
