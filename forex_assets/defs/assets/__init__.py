"""Software-defined assets, by domain; each is a thin shell over a Dagster-free core."""
