"""GM-DGM and M2 (PyTorch): models, training and evaluation."""
