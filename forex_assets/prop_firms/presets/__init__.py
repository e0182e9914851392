"""One module per firm, each defining `PRESETS`: a tuple of that firm's `PropFirmRules`.

Typical published terms; check your firm's current rules, which change, before relying on
one. Adding a firm is adding a module here (see CONTRIBUTING.md).
"""
