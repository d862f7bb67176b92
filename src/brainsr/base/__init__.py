"""The bottom layer of brainsr: array helpers shared by training, preprocessing and evaluation.

Modules here import nothing from the rest of brainsr except this layer (imported downward only) and no torch at
module level, so the evaluation commands that use them start without torch.
"""
