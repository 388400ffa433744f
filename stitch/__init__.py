"""Stitch: temporally coherent GAN-based face editing of real videos (after *Stitch it in Time*)."""

__version__ = "0.1.0"
