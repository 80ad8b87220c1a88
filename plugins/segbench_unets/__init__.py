"""Built-in CNN baselines for segbench: smp U-Net, ResNet-50 Attention U-Net, any smp model.

Importing this package is cheap; torch, timm and smp load when a model is built.
"""
