"""MedSegDiff V1 (Wu et al. 2023): conditional DDPM on the mask, image encoder modulated by dynamic conditional encoding and the FF-Parser."""
