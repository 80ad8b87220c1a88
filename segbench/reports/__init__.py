"""Comparison tables rendered from run directories (Markdown, LaTeX, CSV)."""
