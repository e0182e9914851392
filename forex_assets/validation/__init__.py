"""Validation: combinatorial purged cross-validation and overfitting statistics."""
