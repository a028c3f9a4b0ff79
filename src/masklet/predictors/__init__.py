"""Predictors: user-facing wrappers around `SAM2Model` (they hold it, never inherit from it)."""
