"""Models: LightGBM and a torch MLP trained per CPCV split, out-of-fold paths, stacking."""
