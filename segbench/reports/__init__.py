"""Comparison reports rendered from run directories (Markdown, LaTeX, HTML, CSV), with statistics and figures."""
