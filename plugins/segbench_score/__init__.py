"""Built-in score-based segmenters: NCSN and score-SDE (ncsn-add, ncsn-concat, sde-add, sde-concat)."""
