"""Prop-firm challenges: the rules as data, one module per firm's presets, the checker."""
