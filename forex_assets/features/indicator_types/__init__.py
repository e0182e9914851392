"""One module per family of indicators, each defining `INDICATORS`: a tuple of `Indicator`.

`forex_assets.features.indicator_set` collects them by module; a new indicator is a new
module here (its kernel, if TA-Lib lacks it, in the same module), see CONTRIBUTING.md.
"""
