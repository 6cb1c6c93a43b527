"""MCAT's learned models: context encoder C, forward model F, contrastive loss and action translator H."""
