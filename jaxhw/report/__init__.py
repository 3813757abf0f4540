"""Figures (matplotlib, Agg backend) and the written report."""
