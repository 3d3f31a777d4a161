"""The plain PyTorch models of the study: image baselines (MLP, CNN, ViT), the SIREN fitted to
each image, the weight-space MLP and the zoo CNN family.

Owns model definitions only; they know nothing of graphs, data or training.
May import: nothing of gmn.
"""
